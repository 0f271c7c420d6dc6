//! Phase: the digest's cost as the table grows. `DigestRunner::run` (SMTP
//! to MailDev) with 10 new leads, at 10,000 and then at 100,000 older leads
//! already reported (no pending record; seeded in entity-group
//! transactions), through a counting proxy that notes every request and
//! every entity Azurite answered. Beside it, the documented Power Automate
//! flow's query, `Timestamp gt datetime'…'`, on the same table.

use crate::direct::{self, EntityTemplate};
use crate::load::{lead_body, median};
use crate::procfs::load_average;
use crate::progress;
use crate::proxy::{CountingProxy, Exchange};
use azure_data_tables::prelude::*;
use marketplace_leads::configuration::Settings;
use marketplace_leads::digest::{DigestRunner, Outcome};
use marketplace_leads::domain::Lead;
use marketplace_leads::store::Consumer;
const DIGEST: Consumer = Consumer::Digest;
use marketplace_leads::store::LeadStore;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use testkit::{Azurite, MailDev};
use time::OffsetDateTime;

/// Table sizes measured, in older leads.
const SIZES: [usize; 2] = [10_000, 100_000];
/// Older leads arrive at this rate: a bigger table is a longer history,
/// not a busier day.
const OLDER_LEADS_PER_DAY: usize = 1_000;
pub const NEW_LEADS: usize = 10;
/// Digest runs per size, each over 10 new leads.
const RUNS: usize = 5;
const QUERY_REPEATS: usize = 5;

#[derive(Serialize)]
pub struct QueryCost {
    pub filter: String,
    pub entities_returned: usize,
    /// What Azure Table storage reads to answer it.
    pub entities_read_on_azure: usize,
    pub requests: usize,
    pub median_ms: f64,
}

#[derive(Serialize)]
pub struct SizeCost {
    pub older_leads: usize,
    pub days_of_history: usize,
    pub table_entities: usize,
    pub seed_s: f64,
    pub runs: usize,
    pub leads_per_run: usize,
    pub run_median_ms: f64,
    pub run_min_ms: f64,
    pub run_max_ms: f64,
    /// Requests one run sent (both tables), median.
    pub requests_per_run: usize,
    /// Of which reads (`GET`).
    pub reads_per_run: usize,
    /// Entities Azurite's answers to one run carried, both tables, median.
    pub entities_returned_per_run: usize,
    /// Of which from the leads table (pending records and lead rows).
    pub leads_table_entities_returned_per_run: usize,
    /// Every entity in the partitions the run's leads-table queries
    /// touch: the most Azure could read if it scanned those partitions
    /// whole instead of seeking the key ranges.
    pub entities_in_partitions_touched: usize,
    /// The leads-table filters one run sent.
    pub leads_table_filters: Vec<String>,
    pub timestamp_filter: QueryCost,
}

#[derive(Serialize)]
pub struct DigestCost {
    pub sizes: Vec<SizeCost>,
    /// Largest ÷ smallest table.
    pub entities_returned_ratio: f64,
    pub partition_entities_ratio: f64,
    pub run_time_ratio: f64,
    pub timestamp_read_ratio: f64,
    pub timestamp_time_ratio: f64,
    pub load_average: String,
}

fn settings(storage: &str, table: &str, smtp_url: &str) -> Settings {
    let env: HashMap<&str, String> = HashMap::from([
        ("LEADS_STORAGE", storage.to_owned()),
        ("LEADS_TABLE", table.to_owned()),
        ("DIGEST_TO", "bench-digest@example.com".to_owned()),
        ("DIGEST_FROM", "marketplace-leads@example.com".to_owned()),
        ("SMTP_URL", smtp_url.to_owned()),
    ]);
    Settings::from_vars(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .expect("the benchmark's settings")
}

/// `PartitionKey eq 'x'`, or the `ge`/`gt` and `le`/`lt` bounds, of a filter.
fn partition_bounds(filter: &str) -> Option<String> {
    let value = |op: &'static str| -> Option<(&'static str, String)> {
        let at = filter.find(&format!("PartitionKey {op} '"))? + op.len() + 15;
        let rest = &filter[at..];
        Some((op, rest[..rest.find('\'')?].to_owned()))
    };
    if let Some((_, key)) = value("eq") {
        return Some(format!("PartitionKey eq '{key}'"));
    }
    let low = value("ge").or_else(|| value("gt"))?;
    let high = value("le").or_else(|| value("lt"))?;
    Some(format!(
        "PartitionKey {} '{}' and PartitionKey {} '{}'",
        low.0, low.1, high.0, high.1
    ))
}

fn leads_table_exchanges<'a>(
    exchanges: &'a [Exchange],
    table: &'a str,
) -> impl Iterator<Item = &'a Exchange> + 'a {
    exchanges.iter().filter(move |e| e.table == table)
}

async fn count(table: &TableClient, filter: Option<String>) -> usize {
    direct::query_all(table, filter, Some("RowKey"))
        .await
        .0
        .len()
}

pub async fn run(maildev: &MailDev, tag: &str) -> DigestCost {
    let azurite = Azurite::start();
    let proxy = CountingProxy::start(azurite.port).await;
    let table_name = format!("BenchDigest{tag}");
    let settings = settings(&proxy.connection_string(), &table_name, &maildev.smtp_url());
    let store = LeadStore::from_settings(&settings.storage).expect("a store");
    store.ensure_tables().await.expect("the tables");
    let runner = DigestRunner::from_settings(store.clone(), &settings);
    let table = direct::table_service(azurite.port).table_client(&table_name);

    // The older leads' template: a lead stored by `LeadStore::save` long
    // ago, read back and removed.
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(400);
    let sample = Lead::parse(lead_body(tag, 0).as_bytes()).expect("a lead");
    store
        .save(&sample, long_ago, &[DIGEST])
        .await
        .expect("save the template lead");
    let (rows, _) = direct::query_all(&table, None, None).await;
    let template = EntityTemplate::from_stored(&rows);
    for row in &rows {
        let (pk, rk) = (
            row["PartitionKey"].as_str().unwrap_or_default(),
            row["RowKey"].as_str().unwrap_or_default(),
        );
        table
            .partition_key_client(pk)
            .entity_client(rk)
            .delete()
            .await
            .expect("remove the template lead");
    }

    // A first run with nothing pending: the cursor moves to yesterday, as
    // in any table where digests have been running.
    let first = runner
        .run(OffsetDateTime::now_utc(), false)
        .await
        .expect("a first digest run");
    assert!(matches!(first.outcome, Outcome::NoNewLeads));

    let load = load_average();
    let now = OffsetDateTime::now_utc();
    let seed = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    );
    let mut seeded = 0;
    let mut new_lead = 0;
    let mut sizes = Vec::new();
    for older in SIZES {
        let seeding = Instant::now();
        let leads: Vec<_> = (seeded..older)
            .map(|i| {
                let at = now
                    - time::Duration::hours(1)
                    - time::Duration::seconds((i * 86_400 / OLDER_LEADS_PER_DAY) as i64);
                template.build(at, seed.wrapping_add(i as u64), &lead_body(tag, i))
            })
            .collect();
        assert!(
            direct::seed_reported(&table, leads).await,
            "every older lead stored"
        );
        seeded = older;
        let seed_s = seeding.elapsed().as_secs_f64();
        progress!("digest: {older} older leads seeded ({seed_s:.1} s)");

        // The documented flow's cut-off: after every older write.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let cutoff = OffsetDateTime::now_utc();
        tokio::time::sleep(Duration::from_millis(1_500)).await;

        let mut times = Vec::new();
        let mut requests = Vec::new();
        let mut reads = Vec::new();
        let mut returned = Vec::new();
        let mut leads_returned = Vec::new();
        let mut filters = BTreeSet::new();
        let mut timestamp = None;
        let mut touched = 0;
        for run in 0..RUNS {
            for _ in 0..NEW_LEADS {
                let body = lead_body(&format!("{tag}new"), new_lead);
                new_lead += 1;
                let lead = Lead::parse(body.as_bytes()).expect("a lead");
                store
                    .save(&lead, OffsetDateTime::now_utc(), &[DIGEST])
                    .await
                    .expect("save a new lead");
            }
            if run == 0 {
                timestamp = Some(timestamp_query(&table, cutoff).await);
            }
            proxy.take();
            let started = Instant::now();
            let report = runner
                .run(OffsetDateTime::now_utc(), false)
                .await
                .expect("a digest run");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let exchanges = proxy.take();
            assert!(
                matches!(report.outcome, Outcome::Sent { .. }),
                "the digest was sent"
            );
            assert_eq!(
                report.lead_count, NEW_LEADS,
                "the digest reports the new leads"
            );
            requests.push(exchanges.len() as f64);
            reads.push(exchanges.iter().filter(|e| e.method == "GET").count() as f64);
            returned.push(exchanges.iter().map(|e| e.entities).sum::<usize>() as f64);
            leads_returned.push(
                leads_table_exchanges(&exchanges, &table_name)
                    .map(|e| e.entities)
                    .sum::<usize>() as f64,
            );
            if run == 0 {
                for exchange in leads_table_exchanges(&exchanges, &table_name) {
                    if let Some(filter) = &exchange.filter {
                        filters.insert(filter.clone());
                        if let Some(bounds) = partition_bounds(filter) {
                            touched += count(&table, Some(bounds)).await;
                        }
                    }
                }
            }
        }
        let table_entities = count(&table, None).await;
        let mut timestamp = timestamp.expect("the Timestamp query ran");
        timestamp.entities_read_on_azure = table_entities;
        let size = SizeCost {
            older_leads: older,
            days_of_history: older.div_ceil(OLDER_LEADS_PER_DAY),
            table_entities,
            seed_s,
            runs: RUNS,
            leads_per_run: NEW_LEADS,
            run_median_ms: median(&times),
            run_min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
            run_max_ms: times.iter().copied().fold(0.0, f64::max),
            requests_per_run: median(&requests) as usize,
            reads_per_run: median(&reads) as usize,
            entities_returned_per_run: median(&returned) as usize,
            leads_table_entities_returned_per_run: median(&leads_returned) as usize,
            entities_in_partitions_touched: touched,
            leads_table_filters: filters.into_iter().collect(),
            timestamp_filter: timestamp,
        };
        progress!(
            "digest at {older} older leads ({table_entities} entities): run {:.1} ms median, \
             {} requests, {} entities returned ({} from the leads table; {} in the partitions \
             touched) | Timestamp filter: {} returned, {:.1} ms",
            size.run_median_ms,
            size.requests_per_run,
            size.entities_returned_per_run,
            size.leads_table_entities_returned_per_run,
            size.entities_in_partitions_touched,
            size.timestamp_filter.entities_returned,
            size.timestamp_filter.median_ms
        );
        sizes.push(size);
    }
    let (small, large) = (&sizes[0], &sizes[sizes.len() - 1]);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    DigestCost {
        entities_returned_ratio: ratio(
            large.entities_returned_per_run as f64,
            small.entities_returned_per_run as f64,
        ),
        partition_entities_ratio: ratio(
            large.entities_in_partitions_touched as f64,
            small.entities_in_partitions_touched as f64,
        ),
        run_time_ratio: ratio(large.run_median_ms, small.run_median_ms),
        timestamp_read_ratio: ratio(
            large.timestamp_filter.entities_read_on_azure as f64,
            small.timestamp_filter.entities_read_on_azure as f64,
        ),
        timestamp_time_ratio: ratio(
            large.timestamp_filter.median_ms,
            small.timestamp_filter.median_ms,
        ),
        sizes,
        load_average: load,
    }
}

/// The documented Power Automate flow's query, straight to Azurite.
async fn timestamp_query(table: &TableClient, cutoff: OffsetDateTime) -> QueryCost {
    let filter = format!(
        "Timestamp gt datetime'{}'",
        cutoff
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .unwrap_or_default()
    );
    let mut ms = Vec::new();
    let (mut returned, mut requests) = (0, 0);
    for _ in 0..QUERY_REPEATS {
        let started = Instant::now();
        let (rows, pages) = direct::query_all(table, Some(filter.clone()), None).await;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        returned = rows.len();
        requests = pages;
    }
    QueryCost {
        filter,
        entities_returned: returned,
        entities_read_on_azure: 0,
        requests,
        median_ms: median(&ms),
    }
}
