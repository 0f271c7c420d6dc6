//! Any bytes as a LeadIngest body: parsing must never panic, and every lead
//! it accepts must make a table row that Table storage would take (see
//! `store::fuzz_support::fuzz_entity` for the rules checked).

#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_leads::lead::Lead;

fuzz_target!(|data: &[u8]| {
    if let Ok(lead) = Lead::parse(data) {
        marketplace_leads::store::fuzz_support::fuzz_entity(&lead);
    }
});
