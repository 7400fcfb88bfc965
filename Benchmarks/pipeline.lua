-- wrk script: every write carries DEPTH pipelined GET requests for the URL's path (DEPTH: the script's argument,
-- default 16, the depth of TechEmpower's plaintext test). wrk counts each response as a request.
-- Usage: wrk -t1 -c64 -d5s -s Benchmarks/pipeline.lua http://127.0.0.1:PORT/healthz -- 16
init = function(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do requests[i] = wrk.format("GET") end
   batch = table.concat(requests)
end

request = function()
   return batch
end
