//! Reading a range of the leads table a page at a time: each page starts
//! from the continuation token of the one before and is retried on its own,
//! so a long read survives a transient error and holds one page in memory.

use super::{retrying, StoreError};
use azure_core::error::ErrorKind;
use azure_core::{Continuable, StatusCode};
use azure_data_tables::prelude::TableClient;
use futures::StreamExt;
use serde_json::{Map, Value};

/// Rows per page: the service's maximum.
pub const PAGE_ROWS: u32 = 1_000;

/// The rows of `table` matching `filter`, one page at a time.
pub(super) fn pages(
    table: TableClient,
    filter: String,
) -> impl futures::Stream<Item = Result<Vec<Map<String, Value>>, StoreError>> + Send + 'static {
    query_pages(table, filter, Query::default())
}

/// What a query asks for beyond its filter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Query {
    /// Only these columns (`$select`), for counting or skimming.
    pub select: Option<&'static str>,
    /// Rows per page, at most [`PAGE_ROWS`].
    pub page_rows: u32,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            select: None,
            page_rows: PAGE_ROWS,
        }
    }
}

/// As [`pages`], asking for what `query` says.
pub(super) fn query_pages(
    table: TableClient,
    filter: String,
    options: Query,
) -> impl futures::Stream<Item = Result<Vec<Map<String, Value>>, StoreError>> + Send + 'static {
    enum Next {
        First,
        After((String, Option<String>)),
        Done,
    }
    futures::stream::try_unfold(Next::First, move |next| {
        let (table, filter) = (table.clone(), filter.clone());
        async move {
            let continuation = match next {
                Next::Done => return Ok(None),
                Next::First => None,
                Next::After(continuation) => Some(continuation),
            };
            let page = retrying("read leads", || {
                let mut query = table
                    .query()
                    .filter(filter.clone())
                    .top(options.page_rows.min(PAGE_ROWS));
                if let Some(select) = options.select {
                    query = query.select(select);
                }
                if let Some((partition_key, row_key)) = continuation.clone() {
                    query = query.initial_partition_key(partition_key);
                    if let Some(row_key) = row_key {
                        query = query.initial_row_key(row_key);
                    }
                }
                async move {
                    // The first item of a fresh stream is exactly one page.
                    query
                        .into_stream::<Map<String, Value>>()
                        .next()
                        .await
                        .unwrap_or_else(|| {
                            Err(azure_core::Error::message(
                                ErrorKind::Other,
                                "the query answered no page",
                            ))
                        })
                }
            })
            .await
            .map_err(|e| {
                if e.is_status(StatusCode::NotFound) {
                    StoreError::NoTable(table.table_name().to_owned())
                } else {
                    e
                }
            })?;
            let next = match Continuable::continuation(&page) {
                Some(continuation) => Next::After(continuation),
                None => Next::Done,
            };
            Ok(Some((page.entities, next)))
        }
    })
}
