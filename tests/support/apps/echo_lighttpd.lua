-- mod_magnet script (magnet.attract-raw-url-to) for the lighttpd of
-- tests/support/real_servers.py: every URI except /chunked/... (see echo_lighttpd_chunked.sh).
-- Echoes X-Request-Id as a header and in the body "id=<id>\n"; lighttpd always frames a
-- body made here with Content-Length. A request body is collected (read in full) first:
-- answering before it would make lighttpd close the connection.
-- Recording is lighttpd's access log (accesslog.format = "%m %{X-Request-Id}i").
local r = lighty.r
if r.req_header['Content-Length'] or r.req_header['Transfer-Encoding'] then
    if not r.req_body.collect then
        return 0  -- lighttpd reads the body, then runs this script again
    end
end
local id = r.req_header['X-Request-Id'] or '-'
r.resp_header['Content-Type'] = 'text/plain'
r.resp_header['X-Request-Id'] = id
r.resp_body:set({ 'id=' .. id .. '\n' })
return 200
