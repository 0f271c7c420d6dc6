//! Where an export goes: buffered stdout, or a file that appears only once
//! the export is complete. The file is written as a temporary file beside
//! the destination, readable by its owner only (it holds personal data),
//! then renamed into place; dropped before that, it is removed, so a failed
//! export never leaves a file that looks whole.
//!
//! Only a new path or an existing regular file is replaced: a symbolic link,
//! a device (`/dev/full`), a FIFO or a directory is refused, so an export
//! run as root can never replace one with customer data.

use anyhow::Context as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

pub(super) enum Output {
    Stdout(BufWriter<io::Stdout>),
    File {
        writer: BufWriter<NamedTempFile>,
        destination: PathBuf,
    },
}

impl Output {
    pub(super) fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(destination) = path else {
            return Ok(Self::Stdout(BufWriter::new(io::stdout())));
        };
        check_replaceable(destination)?;
        let name = destination
            .file_name()
            .with_context(|| format!("--output {} is not a file name", destination.display()))?;
        let directory = match destination.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(directory)
            .with_context(|| format!("Failed to create a file in {}", directory.display()))?;
        Ok(Self::File {
            writer: BufWriter::new(temporary),
            destination: destination.to_owned(),
        })
    }

    /// Flushes; a file is synced and renamed into place. Returns where the
    /// export went, for the summary.
    pub(super) fn commit(self) -> anyhow::Result<String> {
        match self {
            Self::Stdout(mut out) => {
                out.flush().context("Failed to write to stdout")?;
                Ok("stdout".into())
            }
            Self::File {
                writer,
                destination,
            } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|file| file.as_file().sync_all().map(|()| file))
                    .with_context(|| format!("Failed to write {}", destination.display()))?;
                // Checked again: the path may have changed during the export.
                check_replaceable(&destination)?;
                file.persist(&destination).map_err(|e| {
                    anyhow::Error::new(e.error).context(format!(
                        "Failed to move the export to {}",
                        destination.display()
                    ))
                })?;
                Ok(destination.display().to_string())
            }
        }
    }
}

/// A new path, or an existing regular file: anything else is refused.
fn check_replaceable(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("Failed to look at {}", path.display())))
        }
        Ok(meta) if meta.file_type().is_symlink() => anyhow::bail!(
            "--output {} is a symbolic link; give the path of a regular file",
            path.display()
        ),
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => anyhow::bail!(
            "--output {} exists and is not a regular file (a directory, device or FIFO); \
             give a new path or a regular file",
            path.display()
        ),
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write(buf),
            Self::File { writer, .. } => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.write_all(buf),
            Self::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File { writer, .. } => writer.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_file_appears_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        let mut output = Output::open(Some(&path)).unwrap();
        output.write_all(b"a,b\r\n").unwrap();
        assert!(!path.exists(), "nothing at the path before commit");
        output.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\r\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_abandoned_export_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        let mut output = Output::open(Some(&path)).unwrap();
        output.write_all(b"partial").unwrap();
        drop(output);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_regular_file_is_replaced_anything_else_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.csv");
        std::fs::write(&file, "old").unwrap();
        let mut output = Output::open(Some(&file)).unwrap();
        output.write_all(b"new").unwrap();
        output.commit().unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");

        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for refused in [
            link.as_path(),
            fifo.as_path(),
            dir.path(),
            Path::new("/dev/null"),
        ] {
            let error = Output::open(Some(refused)).err().expect("refused");
            assert!(error.to_string().contains("--output"), "{error}");
        }
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"new",
            "the link's target is untouched"
        );
    }
}
