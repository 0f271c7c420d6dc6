//! The Azure Functions custom-handler protocol: what the host sends a timer
//! function and what it expects back. (HTTP functions are forwarded as plain
//! HTTP requests and need no types.)

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /<FunctionName>` body for a timer trigger. Every part is optional:
/// `ScheduleStatus` is often `null`, and its date formats have broken strict
/// parsers, so nothing here is parsed beyond what we log.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TimerInvocation {
    #[serde(rename = "Data")]
    pub data: Option<TimerData>,
    #[serde(rename = "Metadata")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TimerData {
    pub timer: Option<TimerInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TimerInfo {
    #[serde(rename = "IsPastDue")]
    pub is_past_due: Option<bool>,
    #[serde(rename = "ScheduleStatus")]
    pub schedule_status: Option<Value>,
}

impl TimerInvocation {
    /// Parses leniently: an empty or unexpected body is still an invocation.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    pub fn is_past_due(&self) -> bool {
        self.data
            .as_ref()
            .and_then(|d| d.timer.as_ref())
            .and_then(|t| t.is_past_due)
            .unwrap_or(false)
    }
}

/// The answer the host expects from a non-HTTP function. The host logs each
/// `Logs` entry in the invocation's context, but only on a 2xx answer.
#[derive(Debug, Serialize)]
pub struct InvokeResponse {
    #[serde(rename = "Outputs")]
    pub outputs: serde_json::Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<Value>,
}

impl InvokeResponse {
    pub fn with_logs(logs: Vec<String>) -> Self {
        Self {
            outputs: Default::default(),
            logs,
            return_value: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_host_payloads_parse() {
        let null_status = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},
            "Metadata":{"sys":{"MethodName":"LeadDigest","UtcNow":"2023-09-07T11:40:45.004275Z","RandGuid":"35e6e68c-1"}}}"#;
        let parsed = TimerInvocation::parse(null_status);
        assert!(!parsed.is_past_due());
        assert!(parsed.metadata.is_some());

        let populated = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
            "ScheduleStatus":{"Last":"2023-09-07T11:00:00+00:00","Next":"09/07/2023 12:00:00","LastUpdated":"0001-01-01T00:00:00"},
            "IsPastDue":true}},"Metadata":{}}"#;
        assert!(TimerInvocation::parse(populated).is_past_due());
        assert!(!TimerInvocation::parse(b"").is_past_due());
        assert!(!TimerInvocation::parse(b"{\"input\":\"\"}").is_past_due());
    }

    #[test]
    fn response_shape() {
        let body = serde_json::to_value(InvokeResponse::with_logs(vec!["x".into()])).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"Outputs":{},"Logs":["x"],"ReturnValue":null})
        );
    }
}
