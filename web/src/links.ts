// Terminal output can carry hyperlinks (OSC 8) whose text and target differ. A link opens only
// when the user clicks it, only for http(s), and only after a prompt that shows the real target.

/** The URL to open for a link's target, or null for anything but an absolute http(s) URL. */
export function safeLinkTarget(target: string): string | null {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  // Credentials in a link are a classic disguise (https://bank.example@evil.example/).
  if (url.username !== "" || url.password !== "") return null;
  return url.href;
}
