-- Distinct leads: wrk runs a Lua state per thread; a table's address tells
-- them apart (a thread id set in setup() can be overwritten by the chunk).
local counter = 0
local uniq = nil
function request()
  if uniq == nil then uniq = string.gsub(tostring({}), "[^%w]", "") .. tostring(os.time()) end
  counter = counter + 1
  local body = string.format('{"UserDetails":{"FirstName":"Zoë","LastName":"Nakamura","Email":"zoe.%s.%d@fabrikam.example","Phone":"+81 3 1234 5678","Country":"Japan","Company":"Fabrikam","Title":"CTO"},"LeadSource":"AzureMarketplace","ActionCode":"PLT","OfferTitle":"Contoso Analytics","Description":"Please call me about pricing for 200 seats."}', uniq, counter)
  return wrk.format("POST", "/api/LeadIngest", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 201 then
    statuses = (statuses or 0) + 1
  end
end
