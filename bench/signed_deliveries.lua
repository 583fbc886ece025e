-- wrk script: replays pre-signed BambooHR deliveries (one per line: timestamp TAB signature TAB body),
-- cycling through the file; a request after the last line repeats the first (a redelivery).
local requests = {}
local next_index = 0

init = function(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/officeflow/webhooks/bamboohr", {
      ["Content-Type"] = "application/json",
      ["X-BambooHR-Timestamp"] = stamp,
      ["X-BambooHR-Signature"] = signature,
    }, body)
  end
  file:close()
end

request = function()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
