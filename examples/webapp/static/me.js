// Calls the app's JSON API as a single-page app would: the browser sends
// the HttpOnly cookie, which no script can read.
document.getElementById("call-api").addEventListener("click", async () => {
  const out = document.getElementById("api-result");
  try {
    const res = await fetch("/api/me", { headers: { Accept: "application/json" } });
    out.textContent = res.status + " " + (await res.text());
  } catch (err) {
    out.textContent = "request failed: " + err;
  }
});
