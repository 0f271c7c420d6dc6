// The Node.js peer of `cargo bench --bench ingest`: the same guarantee as
// the handler's LeadIngest, written the way a Node.js service would write it
// with the official SDK (`@azure/data-tables`, pinned in package.json).
//
// POST /api/LeadIngest: parses the lead (JSON object, keys matched whatever
// their casing, values trimmed), fingerprints its canonical JSON (SHA-256,
// keys sorted), and stores the de-duplication marker, the lead row (the
// handler's columns, its rating included) and the digest's pending record
// (with the lead's action, offer and rating, as the handler's) in ONE
// entity-group transaction (`TableClient.submitTransaction`), answering 201 only once
// committed, 200 for a same-day duplicate (the marker exists), 400 for a
// body that is not a lead, 503 when storage fails. GET / answers 200
// (readiness, as the Functions host asks). One log line per lead on stdout.
//
// Settings: PEER_PORT, LEADS_STORAGE (connection string), LEADS_TABLE.
// Loopback only. Started and stopped by the benchmark; not part of the
// service.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { TableClient } = require("@azure/data-tables");

const MAX_BODY_BYTES = 64 * 1024;
const MAX_PROPERTY_UTF16 = 32000;
const TEST_MARKER = "MSFT_TEST";

const port = Number(process.env.PEER_PORT || 7072);
const table = TableClient.fromConnectionString(
  process.env.LEADS_STORAGE,
  process.env.LEADS_TABLE || "MarketplaceLeads",
  { allowInsecureConnection: true },
);

// In the background, as the handler does: readiness does not wait for it,
// and a lead that comes first creates the table itself.
createTable().catch((e) => {
  process.stdout.write(JSON.stringify({ level: "warn", msg: "could not create the table", error: String(e) }) + "\n");
});
function createTable() {
  return table.createTable().catch((e) => {
    if (e.statusCode !== 409) throw e;
  });
}

class NotALead extends Error {}

// The rating, as the handler's rules (src/domain/rating.rs, rules version
// 1) score a lead: the same signals, weights and reasons, free-mail domains
// from the same pinned list. (The handler's disposable-mailbox and "do not
// contact" signals are left out: they never fire on the benchmark's leads.)
const FREE_MAIL = new Set(
  fs
    .readFileSync(path.join(__dirname, "../../../src/domain/data/free-email-domains.txt"), "utf8")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#")),
);
function rate(lead) {
  const c = lead.customer;
  const email = c.Email && c.Email.includes("@") ? c.Email.trim() : undefined;
  const domain = email ? email.slice(email.lastIndexOf("@") + 1).trim().toLowerCase() : "";
  const reasons = [];
  let score = 0;
  const signal = (weight, reason) => {
    score += weight;
    reasons.push(reason);
  };
  switch ((lead.actionCode || "").toUpperCase()) {
    case "PLT": signal(40, "asked to be contacted"); break;
    case "CREATE": signal(40, "bought in the Azure portal"); break;
    case "STARTTESTDRIVE": signal(25, "started a test drive"); break;
    case "INS": signal(0, "installed only"); break;
  }
  if (!email) signal(-20, "no email");
  else if (FREE_MAIL.has(domain)) signal(-15, `personal mailbox (${domain})`);
  else signal(20, "company email domain");
  if (c.Phone) signal(10, "phone given");
  if (c.Title) signal(5, "job title given");
  if (!c.Company) signal(-10, "no company");
  const note = (lead.description || "").trim();
  if ([...note].length >= 12 && !note.startsWith("Campaigns:")) signal(10, "wrote a note");
  let level = score >= 50 ? "hot" : score >= 20 ? "warm" : "cold";
  if (lead.isTest) {
    level = "cold";
    reasons.unshift("Partner Center test lead");
  }
  return { level, score, reasons: reasons.join("; ") };
}

/// A key looked up case-insensitively; an exact, non-blank match wins.
function field(object, name) {
  const blank = (v) =>
    v === null ||
    v === undefined ||
    (typeof v === "string" && v.trim() === "") ||
    (typeof v === "object" && Object.keys(v).length === 0);
  if (!blank(object[name])) return object[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(object).sort()) {
    if (key.toLowerCase() === lower && !blank(object[key])) return object[key];
  }
  return undefined;
}

function textField(object, name) {
  const value = field(object, name);
  if (value === undefined || value === null) return undefined;
  const text = typeof value === "string" ? value.trim() : JSON.stringify(value);
  return text === "" ? undefined : text;
}

/// Canonical JSON: keys sorted at every level, no whitespace.
function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    return (
      "{" +
      Object.keys(value)
        .sort()
        .map((k) => JSON.stringify(k) + ":" + canonical(value[k]))
        .join(",") +
      "}"
    );
  }
  return JSON.stringify(value);
}

function parseLead(raw) {
  const text = raw.replace(/^\uFEFF/, "");
  if (text.trim() === "") throw new NotALead("body is empty");
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new NotALead("body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new NotALead("body must be a JSON object");
  }
  if (Object.keys(value).length === 0) throw new NotALead("body is an empty JSON object");
  const user = field(value, "UserDetails");
  const u = (name) => (user && typeof user === "object" ? textField(user, name) : undefined);
  const customer = {
    FirstName: u("FirstName"),
    LastName: u("LastName"),
    Email: u("Email"),
    Phone: u("Phone"),
    Country: u("Country"),
    Company: u("Company"),
    Title: u("Title"),
  };
  const leadSource = textField(value, "LeadSource");
  let source;
  const m = leadSource && /^([^-|]+)-([^|]+)\|(.+)$/.exec(leadSource);
  if (m) source = { channel: m[1].trim(), action: m[2].trim(), offerId: m[3].trim() };
  const isTest = ["FirstName", "LastName", "Email", "Company", "Title"].some(
    (k) => customer[k] && customer[k].slice(0, TEST_MARKER.length).toUpperCase() === TEST_MARKER,
  );
  return {
    customer,
    leadSource,
    source,
    actionCode: textField(value, "ActionCode"),
    offerTitle: textField(value, "OfferTitle"),
    description: textField(value, "Description"),
    isTest,
    raw,
    fingerprint: crypto.createHash("sha256").update(canonical(value)).digest("hex"),
  };
}

/// The receive time to the microsecond, as the handler keys it.
function now() {
  const ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  const ms = Number(ns / 1000000n);
  const micros = Number((ns / 1000n) % 1000000n);
  const iso = new Date(ms).toISOString(); // 2026-11-22T10:15:00.123Z
  const day = iso.slice(0, 10);
  const clock = iso.slice(11, 19);
  const fraction = String(micros).padStart(6, "0");
  return {
    day,
    rfc3339: `${day}T${clock}.${fraction}Z`,
    key: `${day.replaceAll("-", "")}T${clock.replaceAll(":", "")}.${fraction}Z`,
  };
}

function fit(value) {
  if (value === undefined) return undefined;
  return value.length <= MAX_PROPERTY_UTF16 ? value : value.slice(0, MAX_PROPERTY_UTF16 - 14) + " …[truncated]";
}

function entities(lead) {
  const at = now();
  const hex = lead.fingerprint.slice(0, 16);
  const partitionKey = at.day;
  const rowKey = `L${at.key}-${hex}`;
  const leadId = `${at.key.slice(0, 8)}-${hex}`;
  const receivedAt = { value: at.rfc3339, type: "DateTime" };
  const c = lead.customer;
  const rating = rate(lead);
  const row = {
    partitionKey,
    rowKey,
    LeadId: leadId,
    LeadSource: fit(lead.leadSource),
    ActionCode: fit(lead.actionCode),
    OfferDisplayName: fit(lead.offerTitle),
    Description: fit(lead.description),
    CustomerInfo: JSON.stringify(Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v ?? ""]))),
    CreatedTime: at.rfc3339,
    FirstName: fit(c.FirstName),
    LastName: fit(c.LastName),
    Email: fit(c.Email),
    Phone: fit(c.Phone),
    Country: fit(c.Country),
    Company: fit(c.Company),
    Title: fit(c.Title),
    OfferTitle: fit(lead.offerTitle),
    LeadSourceChannel: lead.source && lead.source.channel,
    LeadSourceAction: lead.source && lead.source.action,
    LeadSourceOfferId: lead.source && lead.source.offerId,
    ReceivedAt: receivedAt,
    IsTestLead: lead.isTest,
    Fingerprint: lead.fingerprint,
    RawBody: lead.raw.slice(0, MAX_PROPERTY_UTF16),
    Rating: rating.level,
    RatingScore: rating.score,
    RatingReasons: rating.reasons,
    RatingRules: 1,
  };
  if (lead.raw.length > MAX_PROPERTY_UTF16) row.RawBody2 = lead.raw.slice(MAX_PROPERTY_UTF16, 2 * MAX_PROPERTY_UTF16);
  for (const k of Object.keys(row)) if (row[k] === undefined) delete row[k];
  const marker = {
    partitionKey,
    rowKey: `D${hex}`,
    LeadId: leadId,
    LeadRowKey: rowKey,
    ReceivedAt: receivedAt,
    SaveId: crypto.randomUUID(),
  };
  const pending = {
    partitionKey,
    rowKey: `P.digest.${rowKey}`,
    Consumer: "digest",
    LeadPartition: partitionKey,
    LeadRowKey: rowKey,
    LeadId: leadId,
    IsTestLead: lead.isTest,
    EnqueuedAt: receivedAt,
    LeadAction: lead.actionCode,
    LeadOffer: lead.offerTitle,
    LeadRating: rating.level,
  };
  for (const k of Object.keys(pending)) if (pending[k] === undefined) delete pending[k];
  return { leadId, partitionKey, rowKey, marker, row, pending };
}

/// Marker, row and pending record in one transaction (the marker first, so
/// a concurrent duplicate loses on it). "created" or "duplicate".
async function save(e) {
  const actions = [
    ["create", e.marker],
    ["create", e.row],
    ["create", e.pending],
  ];
  try {
    await table.submitTransaction(actions);
    return "created";
  } catch (error) {
    if (error.statusCode === 404) {
      await createTable();
      await table.submitTransaction(actions);
      return "created";
    }
    if (error.statusCode !== 409) throw error;
    // A retry of ours that committed finds its own marker: new after all.
    const marker = await table.getEntity(e.partitionKey, e.marker.rowKey);
    return marker.LeadRowKey === e.rowKey ? "created" : "duplicate";
  }
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function ingest(req, res) {
  const started = process.hrtime.bigint();
  const chunks = [];
  let length = 0;
  for await (const chunk of req) {
    length += chunk.length;
    if (length > MAX_BODY_BYTES) return answer(res, 413, { error: "body too large" });
    chunks.push(chunk);
  }
  let lead;
  try {
    lead = parseLead(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    if (error instanceof NotALead) return answer(res, 400, { error: error.message });
    throw error;
  }
  const e = entities(lead);
  let outcome;
  try {
    outcome = await save(e);
  } catch (error) {
    process.stdout.write(
      JSON.stringify({ level: "error", msg: "lead NOT confirmed stored", status: 503, error: String(error.message).slice(0, 200) }) + "\n",
    );
    return answer(res, 503, { error: "lead storage is unavailable" });
  }
  const status = outcome === "created" ? 201 : 200;
  process.stdout.write(
    JSON.stringify({
      level: "info",
      msg: "lead stored",
      lead_id: e.leadId,
      status,
      outcome,
      bytes: lead.raw.length,
      duration_ms: Number((process.hrtime.bigint() - started) / 1000000n),
    }) + "\n",
  );
  answer(res, status, { id: e.leadId, status: outcome });
}

const server = http.createServer((req, res) => {
  const route = req.url.split("?")[0];
  if (req.method === "GET" && route === "/") return answer(res, 200, { status: "ok" });
  if (req.method === "POST" && route === "/api/LeadIngest") {
    return ingest(req, res).catch((error) => {
      if (!res.headersSent) answer(res, 500, { error: "internal error" });
      process.stdout.write(JSON.stringify({ level: "error", msg: String(error) }) + "\n");
    });
  }
  answer(res, 404, { error: "not found" });
});
// An idle kept-alive connection is closed after 10 s, as the handler does.
server.keepAliveTimeout = 10000;
server.listen(port, "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
