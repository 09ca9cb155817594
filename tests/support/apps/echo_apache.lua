-- mod_lua handler (LuaMapHandler "^/") for the Apache of tests/support/real_servers.py.
-- Echoes X-Request-Id as a header and in the body "id=<id>\n". Framing by path:
--   /len/     Content-Length (set explicitly)
--   /chunked/ two r:puts separated by r:flush(): Apache chunks (HTTP/1.1)
--   /close/   "downgrade-1.0" (answer as to HTTP/1.0): no length, no chunks,
--             "Connection: close", connection closed after the body
-- Recording is Apache's access log (LogFormat "%m %{X-Request-Id}i"), not this script.
function handle(r)
    local id = r.headers_in['X-Request-Id'] or '-'
    local first = r.uri:match('^/([^/]*)')
    local framing = (first == 'chunked' or first == 'close') and first or 'len'
    if r.headers_in['Content-Length'] or r.headers_in['Transfer-Encoding'] then
        r:requestbody()  -- read (and drop) the whole request body
    end
    r.content_type = 'text/plain'
    r.headers_out['X-Request-Id'] = id
    if framing == 'len' then
        local body = 'id=' .. id .. '\n'
        r.headers_out['Content-Length'] = tostring(#body)
        r:puts(body)
    else
        if framing == 'close' then
            r.subprocess_env['downgrade-1.0'] = '1'
        end
        r:puts('id=')
        r:flush()
        r:puts(id .. '\n')
    end
    return apache2.OK
end
