#!/usr/bin/env bash
# test_server.sh: `ignis serve` over real HTTP with curl: every endpoint, the
# OpenAI shapes (JSON and SSE), the bad-input table, API keys, limits,
# disconnects, jobs and graceful shutdown. Servers listen on 127.0.0.1 at a
# port the kernel picks (--port 0); every wait is bounded; every server is
# stopped at the end. Needs IGNIS_BIN, IGNIS_TEST_DATA, curl and python3.
set -u
BIN=${IGNIS_BIN:?IGNIS_BIN not set}
DATA=${IGNIS_TEST_DATA:-../shared}
MODEL=$DATA/models/stories260K.gguf
REF=$DATA/reference/stories260K.jsonl
fails=0
passes=0
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# start_server NAME ARGS...: start `ignis serve --port 0 ARGS` and wait (<= 10 s)
# for its "serving ... on http://127.0.0.1:PORT" line; sets PORT and PID.
start_server() {
    local name=$1; shift
    "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 1 "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
    PID=$!
    pids+=("$PID")
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.out" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server '$name' did not start:"; cat "$tmp/$name.log"
    exit 1
}

# stop_server PID: SIGTERM, wait <= 15 s; sets STOP_RC.
stop_server() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 150); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1"; STOP_RC=timeout
    else
        wait "$1"; STOP_RC=$?
    fi
    # every server exits 0 after SIGTERM (under ASan/UBSan a report makes it non-zero)
    [ "$STOP_RC" = 0 ] || bad "server $1 stopped with status $STOP_RC"
}

# req METHOD PATH [BODY [curl args...]]: sets STATUS; the body is kept in $tmp/rN.body and the
# headers in $tmp/rN.hdr (N counts requests), for the checks.
n_req=0
req() {
    local method=$1 path=$2; shift 2
    local body=
    if [ $# -gt 0 ]; then body=$1; shift; fi
    n_req=$((n_req + 1))
    BODY=$tmp/r$n_req.body
    HDR=$tmp/r$n_req.hdr
    if [ -n "$body" ]; then
        STATUS=$(curl -s --max-time 20 -X "$method" -o "$BODY" -D "$HDR" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "$body" "$@" "http://127.0.0.1:$PORT$path")
    else
        STATUS=$(curl -s --max-time 20 -X "$method" -o "$BODY" -D "$HDR" -w '%{http_code}' \
            "$@" "http://127.0.0.1:$PORT$path")
    fi
}

# stream PATH BODY [curl args...]: a streaming request with curl -N; like req.
stream() {
    local path=$1 body=$2; shift 2
    n_req=$((n_req + 1))
    BODY=$tmp/r$n_req.body
    HDR=$tmp/r$n_req.hdr
    STATUS=$(curl -sN --max-time 20 -o "$BODY" -D "$HDR" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary "$body" "$@" "http://127.0.0.1:$PORT$path")
}

# check NAME PYTHON_EXPR: queued, evaluated at the end in one python3 run (python starts slowly
# on a loaded machine) with j = the last response's JSON, b = its text, h = its headers
# (lowercase), ev = its SSE data payloads (parsed JSON, or the raw string for [DONE]).
check() {
    printf '%s\0%s\0%s\0%s\0' "$1" "$2" "$BODY" "$HDR" >>"$tmp/checks"
}

# expect_error NAME WANT_STATUS PARAM METHOD PATH BODY [curl args]: an OpenAI error body naming PARAM ("" = any).
expect_error() {
    local name=$1 want=$2 param=$3; shift 3
    req "$@"
    if [ "$STATUS" != "$want" ]; then bad "$name: status $STATUS, want $want; body: $(head -c 300 "$BODY")"; return; fi
    ok
    check "$name: error shape" "set(j) == {'error'} and set(j['error']) == {'message','type','param','code'} and j['error']['message'] and ('$param' == '' or j['error']['param'] == '$param') and 'x-request-id:' in h"
}

# ---------------------------------------------------------------- main server
start_server main --max-body-bytes 65536 --max-inflight 64
MAIN_PID=$PID
MAIN_PORT=$PORT

req GET /ping
[ "$STATUS" = 200 ] && ok || bad "/ping: $STATUS"
req GET /health
[ "$STATUS" = 200 ] && ok || bad "/health: $STATUS"
check "/health shape" "j['status'] == 'healthy' and j['kv_cache']['blocks_used'] == 0 and 'uptime_s' in j and j['memory']['rss_bytes'] > 0 and 'x-request-id:' in h"
req GET /health "" -H 'X-Request-Id: my-id-42'
check "x-request-id echoes the client's" "'x-request-id: my-id-42' in h"

req GET /v1/models
check "/v1/models" "j['object'] == 'list' and j['data'][0]['id'] == 'stories260K' and j['data'][0]['object'] == 'model'"
req GET /v1/models/stories260K
check "/v1/models/{id}" "j['id'] == 'stories260K'"
expect_error "/v1/models/{unknown}" 404 model GET /v1/models/gpt-9

# --- greedy completions match llama.cpp's reference text (and logprobs)
python3 - "$REF" "$tmp" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    if i >= 3: break
    d = json.loads(line)
    body = {"model": "stories260K", "prompt": d["prompt"], "max_tokens": d["n_predict"],
            "temperature": 0, "logprobs": 2}
    open(f"{sys.argv[2]}/ref{i}.json", "w").write(json.dumps(body))
    open(f"{sys.argv[2]}/ref{i}.want", "w").write(json.dumps(d))
PY
for i in 0 1 2; do
    [ -f "$tmp/ref$i.json" ] || continue
    req POST /v1/completions "$(cat "$tmp/ref$i.json")"
    [ "$STATUS" = 200 ] || { bad "greedy completion $i: $STATUS $(cat "$BODY")"; continue; }
    check "greedy completion $i equals llama.cpp" "
(lambda w: j['object'] == 'text_completion' and j['choices'][0]['text'] == w['output_text']
  and j['usage']['completion_tokens'] == len(w['output_ids'])
  and j['usage']['prompt_tokens'] == len(w['prompt_ids'])
  and j['choices'][0]['finish_reason'] == ('length' if len(w['output_ids']) == w['n_predict'] else 'stop')
  and all(abs(a - t[0][1]) < 1e-3 for a, t in zip(j['choices'][0]['logprobs']['token_logprobs'], w['top_logprobs'])))(json.load(open('$tmp/ref$i.want')))"
done

# --- completions: shapes
req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"unknown_field":{"x":1},"user":"u1"}'
check "completion shape (unknown fields ignored)" "j['id'].startswith('cmpl-') and j['object'] == 'text_completion' and isinstance(j['created'], int) and j['model'] == 'stories260K' and j['choices'][0]['finish_reason'] == 'length' and j['usage']['completion_tokens'] == 8 and j['usage']['total_tokens'] == j['usage']['prompt_tokens'] + 8"
req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"echo":true}'
check "echo" "j['choices'][0]['text'].startswith('Once upon a time')"
req POST /v1/completions '{"prompt":[1,403,407,261,378],"max_tokens":4,"temperature":0}'
check "token-id prompt" "j['usage']['prompt_tokens'] == 5 and j['choices'][0]['text']"
req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":6,"n":3,"seed":7,"temperature":1}'
check "n=3" "sorted(c['index'] for c in j['choices']) == [0,1,2] and j['usage']['completion_tokens'] == 18"
req POST /v1/completions '{"prompt":"Once upon a time","max_tokens":40,"temperature":0,"stop":[" girl"]}'
check "stop string" "j['choices'][0]['finish_reason'] == 'stop' and ' girl' not in j['choices'][0]['text'] and j['choices'][0]['text'] == ', there was a little'"
# A token that is never valid UTF-8 on its own (<0xFF>) forced by logit_bias: 200, U+FFFD, valid JSON.
req POST /v1/completions '{"prompt":"Once","max_tokens":3,"temperature":0,"logit_bias":{"258":100}}'
check "invalid UTF-8 from the model becomes U+FFFD" "j['choices'][0]['text'] == '\ufffd' * 3"

# --- streaming
LILY=", there was a little girl named Lily. She loved to play outside in the park."
stream /v1/completions '{"prompt":"Once upon a time","max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
check "completion stream: SSE frames, finish, usage, [DONE]" "'text/event-stream' in h and b.endswith('data: [DONE]\n\n') and ev[-1] == '[DONE]'
  and [c['finish_reason'] for e in ev[:-2] for c in e['choices']][-1] == 'length'
  and all(c['finish_reason'] is None for e in ev[:-3] for c in e['choices'])
  and ev[-2]['choices'] == [] and ev[-2]['usage']['completion_tokens'] == 12
  and all(e['usage'] is None for e in ev[:-2]) and len({e['id'] for e in ev[:-1]}) == 1
  and all(e['object'] == 'text_completion' for e in ev[:-1])
  and '$LILY'.startswith(''.join(c['text'] for e in ev[:-1] for c in e['choices']))"
stream /v1/completions '{"prompt":"Once upon a time","max_tokens":5,"temperature":0,"stream":true}'
check "stream without include_usage has no usage" "ev[-1] == '[DONE]' and all('usage' not in e for e in ev[:-1])"
stream /v1/completions '{"prompt":"Once","max_tokens":3,"temperature":0,"stream":true,"logit_bias":{"258":100}}'
check "stream with invalid UTF-8 stays valid" "ev[-1] == '[DONE]' and ''.join(c['text'] for e in ev[:-1] for c in e['choices']) == '\ufffd' * 3"

# --- chat: this model has no template, so without --chat-template a clear 400
expect_error "chat without a template" 400 messages POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}]}'
check "chat without a template names the fix" "'--chat-template' in j['error']['message']"

# --- the bad-input table (completions)
C=/v1/completions
expect_error "malformed JSON" 400 "" POST $C '{"prompt": "x",'
expect_error "body not an object" 400 "" POST $C '[1,2]'
expect_error "empty body" 400 "" POST $C ''
expect_error "missing prompt" 400 prompt POST $C '{"max_tokens":3}'
expect_error "prompt wrong type" 400 prompt POST $C '{"prompt":{"a":1}}'
expect_error "max_tokens wrong type" 400 max_tokens POST $C '{"prompt":"x","max_tokens":"ten"}'
expect_error "max_tokens negative" 400 max_tokens POST $C '{"prompt":"x","max_tokens":-1}'
expect_error "max_tokens zero" 400 max_tokens POST $C '{"prompt":"x","max_tokens":0}'
expect_error "max_tokens fractional" 400 max_tokens POST $C '{"prompt":"x","max_tokens":2.5}'
expect_error "max_tokens huge real" 400 max_tokens POST $C '{"prompt":"x","max_tokens":1e300}'
expect_error "huge integer" 400 "" POST $C '{"prompt":"x","max_tokens":123456789012345678901234567890}'
expect_error "prompt + max_tokens > context" 400 max_tokens POST $C '{"prompt":"x","max_tokens":2000000}'
check "context error names the numbers" "'2000000' in j['error']['message'] and j['error']['code'] == 'context_length_exceeded'"
expect_error "temperature out of range" 400 temperature POST $C '{"prompt":"x","temperature":5}'
expect_error "temperature wrong type" 400 temperature POST $C '{"prompt":"x","temperature":"hot"}'
expect_error "top_p out of range" 400 top_p POST $C '{"prompt":"x","top_p":1.5}'
expect_error "n zero" 400 n POST $C '{"prompt":"x","n":0}'
expect_error "stop wrong type" 400 stop POST $C '{"prompt":"x","stop":5}'
expect_error "stop list wrong item" 400 stop POST $C '{"prompt":"x","stop":["a",1]}'
expect_error "logit_bias bad key" 400 logit_bias POST $C '{"prompt":"x","logit_bias":{"abc":1}}'
expect_error "logit_bias out of range" 400 logit_bias POST $C '{"prompt":"x","logit_bias":{"5":1000}}'
expect_error "presence_penalty out of range" 400 presence_penalty POST $C '{"prompt":"x","presence_penalty":3}'
expect_error "stream wrong type" 400 stream POST $C '{"prompt":"x","stream":"yes"}'
expect_error "stream_options without stream" 400 stream_options POST $C '{"prompt":"x","stream_options":{"include_usage":true}}'
expect_error "prompt token out of range" 400 prompt POST $C '{"prompt":[1,99999999]}'
expect_error "unknown model" 404 model POST $C '{"model":"gpt-4","prompt":"x"}'
check "unknown model code" "j['error']['code'] == 'model_not_found'"
expect_error "unknown route" 404 "" GET /v2/nothing
expect_error "wrong method" 405 "" GET $C
big="{\"prompt\":\"$(head -c 70000 /dev/zero | tr '\0' a)\"}"
expect_error "oversized body" 413 "" POST $C "$big"
# chat-specific validation happens before the template is needed
H=/v1/chat/completions
expect_error "messages missing" 400 messages POST $H '{"model":"stories260K"}'
expect_error "messages empty" 400 messages POST $H '{"messages":[]}'
expect_error "messages not a list" 400 messages POST $H '{"messages":"hi"}'
expect_error "message without role" 400 messages POST $H '{"messages":[{"content":"hi"}]}'
expect_error "message bad role" 400 messages POST $H '{"messages":[{"role":"wizard","content":"hi"}]}'
expect_error "message content wrong type" 400 messages POST $H '{"messages":[{"role":"user","content":5}]}'
expect_error "top_logprobs without logprobs" 400 top_logprobs POST $H '{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2}'

# --- tokenize / detokenize round trip
req POST /tokenize '{"content":"Hello world, once upon a time","add_special":false}'
check "/tokenize" "j['count'] == len(j['tokens']) > 0 and all(isinstance(t, int) for t in j['tokens'])"
toks=$(sed -n 's/.*"tokens":\(\[[0-9,]*\]\).*/\1/p' "$BODY")
req POST /detokenize "{\"tokens\":$toks}"
check "/detokenize inverts /tokenize" "j['content'] == 'Hello world, once upon a time'"
expect_error "/detokenize bad token" 400 tokens POST /detokenize '{"tokens":[-1]}'

# --- background jobs
req POST /inference '{"prompt":"Once upon a time","max_tokens":10,"temperature":0}'
[ "$STATUS" = 202 ] && ok || bad "/inference: $STATUS $(cat "$BODY")"
job=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$BODY")
for _ in $(seq 100); do
    req GET "/results?id=$job"
    grep -q '"status":"finished"' "$BODY" && break
    sleep 0.05
done
check "/results?id= (finished, telemetry)" "j['id'] == '$job' and j['status'] == 'finished' and j['choices'][0]['text'] == ', there was a little girl named Lily. She loved'[:len(j['choices'][0]['text'])] and j['usage']['completion_tokens'] == 10 and j['telemetry']['duration_ms'] > 0 and j['telemetry']['generated_tokens'] == 10"
req GET /results
check "/results lists finished jobs" "'$job' in [x['id'] for x in j['data']]"
expect_error "/results unknown id" 404 id GET "/results?id=job-nope"

# --- a client that disconnects mid-stream: the request is cancelled, its KV blocks come back
curl -sN --max-time 0.5 "http://127.0.0.1:$PORT/v1/completions" -o /dev/null \
    -d '{"prompt":"Once upon a time","max_tokens":1900,"temperature":1,"stream":true}'
for _ in $(seq 100); do
    req GET /health
    grep -q '"in_flight":0,"queue":0,"running":0,"kv_cache":{"usage":0.0,"blocks_used":0' "$BODY" && break
    sleep 0.1
done
check "disconnect mid-stream frees the KV blocks" "j['running'] == 0 and j['kv_cache']['blocks_used'] == 0 and j['requests']['in_flight'] == 0"
req GET /metrics
check "disconnect counted as cancelled" "any(l.startswith('ignis_request_success_total') and 'cancelled' in l and not l.endswith(' 0') for l in b.splitlines())"
check "/metrics exposition" "all(k in b for k in ['# TYPE ignis_http_requests_total counter', 'ignis_time_to_first_token_seconds_bucket', 'ignis_inter_token_latency_seconds_bucket', 'ignis_e2e_request_latency_seconds_count', 'ignis_prompt_tokens_total', 'ignis_generation_tokens_total', 'ignis_num_requests_waiting', 'ignis_num_requests_running', 'ignis_kv_cache_usage_ratio', 'ignis_prefix_cache_hit_rate', 'ignis_response_cache_hits_total', 'ignis_coalesced_total', 'ignis_process_resident_memory_bytes', 'status=\"413\"', 'status=\"400\"'])"

# --- a client that disconnects while waiting for a NON-streaming answer: noticed while the
# connection is suspended, every choice cancelled (not run to the end), KV blocks back to 0.
# 16 choices x 2000 tokens (end of text banned) take seconds; the client leaves after 0.5 s.
metric() { sed -n "s/^$1{[^}]*$2[^}]*} \([0-9.e+]*\)$/\1/p" "$BODY" | head -1; }
req GET /metrics
cancelled0=$(metric ignis_request_success_total 'finished_reason="cancelled"')
length0=$(metric ignis_request_success_total 'finished_reason="length"')
curl -s --max-time 0.5 "http://127.0.0.1:$PORT/v1/completions" -o /dev/null \
    -d '{"prompt":"Once upon a time","max_tokens":2000,"n":16,"temperature":1,"logit_bias":{"2":-100}}'
for _ in $(seq 100); do
    req GET /health
    grep -q '"in_flight":0,"queue":0,"running":0,"kv_cache":{"usage":0.0,"blocks_used":0' "$BODY" && break
    sleep 0.1
done
check "non-streaming disconnect frees the KV blocks" "j['running'] == 0 and j['queue'] == 0 and j['kv_cache']['blocks_used'] == 0 and j['requests']['in_flight'] == 0"
req GET /metrics
cancelled1=$(metric ignis_request_success_total 'finished_reason="cancelled"')
length1=$(metric ignis_request_success_total 'finished_reason="length"')
[ "$((cancelled1 - cancelled0))" = 16 ] && [ "$length1" = "$length0" ] && ok ||
    bad "non-streaming disconnect: cancelled $cancelled0 -> $cancelled1 (want +16), length $length0 -> $length1 (want unchanged)"

# --- chat with a named builtin template (chatml)
start_server chat --chat-template chatml
CHAT_PID=$PID
req POST /tokenize '{"content":"<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n"}'
n_chatml=$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' "$BODY")
req POST /v1/chat/completions '{"model":"stories260K","messages":[{"role":"user","content":[{"type":"text","text":"Once upon"},{"type":"text","text":" a time"}]}],"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":2}'
check "chat completion shape" "j['id'].startswith('chatcmpl-') and j['object'] == 'chat.completion' and j['choices'][0]['message']['role'] == 'assistant' and isinstance(j['choices'][0]['message']['content'], str) and j['choices'][0]['finish_reason'] == 'length' and j['usage']['completion_tokens'] == 6"
check "chat prompt is the chatml rendering" "j['usage']['prompt_tokens'] == int('${n_chatml:-0}')"
check "chat logprobs shape" "len(j['choices'][0]['logprobs']['content']) == 6 and all(set(c) == {'token','logprob','bytes','top_logprobs'} and len(c['top_logprobs']) == 2 and c['logprob'] <= 0 for c in j['choices'][0]['logprobs']['content'])"
stream /v1/chat/completions '{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Once upon a time"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}'
check "chat stream: role first, empty delta with finish, usage, [DONE]" "ev[0]['choices'][0]['delta'] == {'role':'assistant','content':''} and all(e['object'] == 'chat.completion.chunk' for e in ev[:-1]) and ev[-3]['choices'][0]['delta'] == {} and ev[-3]['choices'][0]['finish_reason'] == 'length' and ev[-2]['choices'] == [] and ev[-2]['usage']['completion_tokens'] == 5 and ev[-1] == '[DONE]' and all('content' in c['delta'] for e in ev[1:-3] for c in e['choices'])"
expect_error "chat unsupported content part" 400 messages POST /v1/chat/completions '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}'
expect_error "chat tools unsupported" 400 tools POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}'
stop_server "$CHAT_PID"

# --- CORS: allowed origins get Access-Control-Allow-Origin (+ Vary) on every answer, errors
# included; preflights get 204 without the API key; other origins get nothing (403 preflight)
start_server cors --cors-origin https://a.example --cors-origin http://localhost:3000 --api-key k1
CORS_PID=$PID
A='Origin: https://a.example'
req OPTIONS /v1/chat/completions "" -H "$A" -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: authorization, content-type, x-stainless-os'
[ "$STATUS" = 204 ] && ok || bad "CORS preflight: $STATUS $(head -c 200 "$BODY")"
check "CORS preflight headers" "'access-control-allow-origin: https://a.example\n' in h and 'vary: origin' in h and 'access-control-allow-methods:' in h and all(m in h.split('access-control-allow-methods:')[1].split('\n')[0] for m in ('get', 'post', 'options')) and all(x in h.split('access-control-allow-headers:')[1].split('\n')[0] for x in ('authorization', 'content-type', 'x-stainless-os')) and 'access-control-max-age: 600' in h and b == ''"
req OPTIONS /v1/completions "" -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'
[ "$STATUS" = 403 ] && ok || bad "CORS preflight from another origin: $STATUS"
check "no CORS headers for another origin's preflight" "'access-control-allow' not in h"
req POST /v1/completions '{"prompt":"Once","max_tokens":2}' -H "$A" -H 'Authorization: Bearer k1'
[ "$STATUS" = 200 ] && ok || bad "CORS POST: $STATUS"
check "CORS on an answer" "'access-control-allow-origin: https://a.example\n' in h and 'vary: origin' in h and 'x-request-id' in h.split('access-control-expose-headers:')[1].split('\n')[0]"
req POST /v1/completions '{"prompt":"Once","max_tokens":2}' -H 'Origin: http://localhost:3000'
[ "$STATUS" = 401 ] && ok || bad "CORS POST without the key: $STATUS"
check "CORS on an error answer (the page can read it)" "'access-control-allow-origin: http://localhost:3000\n' in h"
stream /v1/completions '{"prompt":"Once","max_tokens":2,"stream":true}' -H "$A" -H 'Authorization: Bearer k1'
check "CORS on a stream" "'access-control-allow-origin: https://a.example\n' in h and ev[-1] == '[DONE]'"
req GET /health "" -H 'Origin: https://evil.example'
check "no CORS headers for another origin" "'access-control-allow' not in h and 'vary:' not in h"
req GET /health
check "no CORS headers without an Origin" "'access-control-allow' not in h"
stop_server "$CORS_PID"
start_server corsany --cors-origin '*'
CORS_PID=$PID
req GET /v1/models "" -H 'Origin: https://anything.example'
check "CORS wildcard: *, no Vary" "'access-control-allow-origin: *\n' in h and 'vary:' not in h"
req OPTIONS /v1/models "" -H 'Origin: https://x.example' -H 'Access-Control-Request-Method: GET'
[ "$STATUS" = 204 ] && ok || bad "CORS wildcard preflight: $STATUS"
stop_server "$CORS_PID"
PORT=$MAIN_PORT
req OPTIONS /v1/completions "" -H "$A" -H 'Access-Control-Request-Method: POST'
[ "$STATUS" = 405 ] && ok || bad "OPTIONS without CORS configured: $STATUS"
check "no CORS headers when not configured" "'access-control-allow' not in h"

# --- a half-sent request on a server with a 1 s idle timeout is closed; others are served meanwhile
start_server slow --idle-timeout 1
SLOW_PID=$PID
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt":' >&3
req GET /ping
[ "$STATUS" = 200 ] && ok || bad "server busy with a half-sent request: /ping $STATUS"
if timeout 5 cat <&3 >/dev/null; then ok; else bad "half-sent request not closed by the idle timeout"; fi
exec 3<&- 3>&-
req GET /ping
[ "$STATUS" = 200 ] && ok || bad "after the idle timeout: /ping $STATUS"
stop_server "$SLOW_PID"

# --- API keys
start_server keys --api-key k-one --api-key k-two
KEYS_PID=$PID
req GET /health
[ "$STATUS" = 200 ] && ok || bad "/health with keys: $STATUS"
req GET /ping
[ "$STATUS" = 200 ] && ok || bad "/ping with keys: $STATUS"
expect_error "no key" 401 "" GET /v1/models
expect_error "wrong key" 401 "" GET /v1/models "" -H 'Authorization: Bearer k-three'
expect_error "key prefix" 401 "" GET /v1/models "" -H 'Authorization: Bearer k-on'
expect_error "metrics behind the key" 401 "" GET /metrics
req GET /v1/models "" -H 'Authorization: Bearer k-two'
[ "$STATUS" = 200 ] && ok || bad "second key: $STATUS"
req POST /v1/completions '{"prompt":"Once","max_tokens":2}' -H 'Authorization: Bearer k-one'
[ "$STATUS" = 200 ] && ok || bad "first key completion: $STATUS"
stop_server "$KEYS_PID"

# --- settings precedence: flag > IGNIS_* environment > --config file > default
cat >"$tmp/ignis.toml" <<'TOML'
[server]
api_keys = ["file-key"]
max_body_bytes = 2048
TOML
export IGNIS_API_KEYS=env-key
start_server cfg --config "$tmp/ignis.toml"
CFG_PID=$PID
expect_error "file key loses to the environment" 401 "" GET /v1/models "" -H 'Authorization: Bearer file-key'
req GET /v1/models "" -H 'Authorization: Bearer env-key'
[ "$STATUS" = 200 ] && ok || bad "environment key: $STATUS"
body3k="{\"prompt\":\"x\",\"max_tokens\":1,\"pad\":\"$(head -c 3000 /dev/zero | tr '\0' a)\"}"
expect_error "max_body_bytes from the file" 413 "" POST /v1/completions "$body3k" -H 'Authorization: Bearer env-key'
stop_server "$CFG_PID"
start_server cfgflag --config "$tmp/ignis.toml" --api-key flag-key --max-body-bytes 65536
CFG_PID=$PID
expect_error "environment key loses to the flag" 401 "" GET /v1/models "" -H 'Authorization: Bearer env-key'
req POST /v1/completions "$body3k" -H 'Authorization: Bearer flag-key'
[ "$STATUS" = 200 ] && ok || bad "flag key and flag body limit: $STATUS $(head -c 200 "$BODY")"
stop_server "$CFG_PID"
unset IGNIS_API_KEYS

# --- overload: one request in flight at most, the next gets 503 + Retry-After
start_server busy --max-inflight 1 --drain-timeout 0
BUSY_PID=$PID
curl -sN --max-time 5 "http://127.0.0.1:$PORT/v1/completions" -o "$tmp/long" \
    -d '{"prompt":"Once upon a time","max_tokens":1900,"stream":true}' &
long=$!
for _ in $(seq 50); do [ -s "$tmp/long" ] && break; sleep 0.05; done
expect_error "overloaded" 503 "" POST /v1/completions '{"prompt":"x","max_tokens":2}'
check "503 has Retry-After" "'retry-after:' in h"
# graceful shutdown with a stream in flight: it ends properly and the server exits 0
stop_server "$BUSY_PID"
[ "$STOP_RC" = 0 ] && ok || bad "graceful shutdown exit status: $STOP_RC"
wait "$long" 2>/dev/null
tail -c 20 "$tmp/long" | grep -q 'data: \[DONE\]' && ok || bad "in-flight stream did not end with [DONE] at shutdown: $(tail -c 200 "$tmp/long")"

# --- the main server stays up through all of the above, logs JSON lines, and stops cleanly
PORT=$MAIN_PORT
req GET /ping
[ "$STATUS" = 200 ] && ok || bad "main server after the bad-input table: $STATUS"
stop_server "$MAIN_PID"
[ "$STOP_RC" = 0 ] && ok || bad "main server exit status: $STOP_RC"
python3 - "$tmp/main.log" <<'PY' && ok || bad "log lines are not all JSON with the request fields"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
reqs = [l for l in lines if l.get("event") == "request"]
assert len(reqs) > 50, len(reqs)
gen = [l for l in reqs if l["path"] == "/v1/completions" and l["status"] == 200]
assert gen and all(k in gen[0] for k in ("request_id", "model", "prompt_tokens", "generated_tokens", "ttft_ms", "duration_ms"))
PY

# --- evaluate the queued checks in one python run
if [ -s "$tmp/checks" ]; then
    python3 - "$tmp/checks" >"$tmp/check_out" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read().split(b"\0")
n_ok = n_bad = 0
for i in range(0, len(raw) - 1, 4):
    name, expr, bpath, hpath = (x.decode() for x in raw[i:i + 4])
    try:
        b = open(bpath, encoding="utf-8", errors="strict").read()
        h = open(hpath).read().lower()
        try:
            j = json.loads(b)
        except Exception:
            j = None
        ev = [json.loads(e[6:]) if e[6:] != "[DONE]" else "[DONE]"
              for e in b.split("\n\n") if e.startswith("data: ")]
        good = eval("(" + expr + "\n)")
    except Exception as e:
        good, expr = False, f"{expr} raised {e!r}"
    if good:
        n_ok += 1
    else:
        n_bad += 1
        print(f"FAIL: {name}: {expr.strip()[:300]}\n  body: {b[:300] if 'b' in dir() else ''}")
print(f"CHECKS {n_ok} {n_bad}")
PY
    grep -v '^CHECKS' "$tmp/check_out"
    read -r _ c_ok c_bad < <(grep '^CHECKS' "$tmp/check_out")
    passes=$((passes + ${c_ok:-0})); fails=$((fails + ${c_bad:-1}))
fi

# sanitizer builds (make check-asan): no server reported anything
if grep -l 'Sanitizer\|runtime error:' "$tmp"/*.log >/dev/null 2>&1; then
    bad "sanitizer reports: $(grep -h -A5 'Sanitizer\|runtime error:' "$tmp"/*.log | head -20)"
else
    ok
fi

echo "test_server: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
