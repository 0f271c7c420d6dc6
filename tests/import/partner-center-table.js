// Writes a table the way Partner Center's "Azure Table" lead destination
// does, with Microsoft's own JavaScript Tables client (a second writer, not
// our store): string columns ActionCode, CreatedTime, CustomerInfo (a JSON
// string), Description, LeadSource and OfferDisplayName.
//
//   node partner-center-table.js <connection string> <table> <count> [extra.json]
//
// <count> generated leads, one a minute before now; then the entities of
// extra.json (an array of column objects) as they are.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const { TableClient } = require("@azure/data-tables");

async function main() {
  const [connection, table, countText, extraFile] = process.argv.slice(2);
  const count = Number(countText);
  const client = TableClient.fromConnectionString(connection, table, { allowInsecureConnection: true });
  await client.createTable();
  const partitionKey = "MarketplaceLeads";
  const now = Date.now();
  const entities = [];
  for (let i = 0; i < count; i++) {
    entities.push({
      ActionCode: i % 3 === 0 ? "INS" : "PLT",
      CreatedTime: new Date(now - (count - i) * 60_000).toISOString(),
      CustomerInfo: JSON.stringify({
        FirstName: `Lead${i}`, LastName: "Buyer", Email: `lead${i}@contoso.example`,
        Phone: "+81 3-1234-5678", Country: "Japan", Company: "Contoso", Title: "CTO",
      }),
      Description: `Please call lead ${i}`,
      LeadSource: i % 3 === 0 ? "AzureMarketplace-INS|fabrikam.analytics" : "SPZA-PLT|fabrikam.analytics",
      OfferDisplayName: "Contoso Analytics",
    });
  }
  if (extraFile) entities.push(...JSON.parse(fs.readFileSync(extraFile, "utf8")));
  // Entity-group transactions of at most 100, as a bulk writer would.
  for (let start = 0; start < entities.length; start += 100) {
    const actions = entities.slice(start, start + 100).map((e) => [
      "create",
      { partitionKey, rowKey: crypto.randomUUID(), ...e },
    ]);
    await client.submitTransaction(actions);
  }
  console.log(`wrote ${entities.length} entities to ${table}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
