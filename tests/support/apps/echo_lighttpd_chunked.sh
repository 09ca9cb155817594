#!/bin/bash
# CGI behind /chunked/ on the lighttpd of tests/support/real_servers.py.
# lighttpd frames with Content-Length every body it has in full when it starts the
# answer, and chunks (HTTP/1.1) a body still streaming from a backend
# (server.stream-response-body). So: the headers, a pause of $ECHO_DELAY seconds (a
# `read -t` on a FIFO nobody writes to, no extra process), then the body.
if [ "${CONTENT_LENGTH:-0}" != 0 ]; then
    cat > /dev/null
fi
printf 'Status: 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: %s\r\n\r\n' \
    "${HTTP_X_REQUEST_ID:--}"
if [ "$REQUEST_METHOD" != HEAD ]; then
    read -r -t "${ECHO_DELAY:-0.05}" <> "${0%/*}/never.fifo"
    printf 'id=%s\n' "${HTTP_X_REQUEST_ID:--}"
fi
