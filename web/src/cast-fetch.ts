// Downloads a recording with a byte cap enforced while reading, so a huge or endless response is
// cut off at the cap instead of filling the tab's memory first.

export class CastFetchError extends Error {
  override name = "CastFetchError";
}

type FetchLike = (url: string, init: { credentials: "same-origin"; headers: Record<string, string> }) => Promise<{
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}>;

export async function fetchCast(url: string, fetchFn: FetchLike, maxBytes: number): Promise<string> {
  let response;
  try {
    response = await fetchFn(url, { credentials: "same-origin", headers: { Accept: "application/x-asciicast, text/plain" } });
  } catch {
    throw new CastFetchError("the recording could not be downloaded (network error)");
  }
  if (!response.ok) throw new CastFetchError(`the recording could not be downloaded (HTTP ${response.status})`);
  const declared = Number(response.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new CastFetchError(`the recording is ${declared} bytes, more than the ${maxBytes} this page plays`);
  }
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parts: string[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new CastFetchError(`the recording is more than the ${maxBytes} bytes this page plays`);
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join("");
}
