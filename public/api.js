// Talking to the gateway: JSON calls with readable errors, and NDJSON fetch streams read as they arrive.

export class ApiError extends Error {}

// A gateway started with --token prints its URL as …/#token=SECRET; the page keeps the token for this tab and
// sends it on every API request (off loopback the gateway wants it on reads too; the fragment never reaches the
// server or its logs).
const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromLink) {
  sessionStorage.setItem('poetry-token', fromLink);
  history.replaceState(null, '', location.pathname + location.search);
}
const token = sessionStorage.getItem('poetry-token');
const authorization = token ? { Authorization: `Bearer ${token}` } : {};

export async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        ...(body ? { 'Content-Type': 'application/json' } : {}),
        ...authorization,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new ApiError(`${method} ${path}: the gateway did not answer (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    const message = data && data.message ? data.message : text || response.statusText;
    throw new ApiError(`${method} ${path}: ${response.status} ${message}`);
  }
  return data;
}

/// Runs a fetch and calls onEvent for every event as it arrives. Resolves with the summary; rejects if the
/// stream breaks before it (so the page reports it instead of looking stuck).
export async function streamFetch(mode, targets, onEvent, signal) {
  const url = `api/fetch?mode=${mode}&format=ndjson&targets=${encodeURIComponent(targets.join(','))}`;
  let response;
  try {
    response = await fetch(url, { signal, headers: authorization });
  } catch (error) {
    throw new ApiError(`${mode} fetch: the gateway did not answer (${error.message})`);
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).message; } catch { /* keep status text */ }
    throw new ApiError(`${mode} fetch: ${response.status} ${message}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let summary = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        const event = JSON.parse(line);
        if (event.event === 'summary') summary = event;
        onEvent(event);
      }
    }
  } catch (error) {
    throw new ApiError(`${mode} fetch: the stream broke (${error.message})`);
  }
  if (!summary) throw new ApiError(`${mode} fetch: the stream ended before its summary`);
  return summary;
}
