// Sign in: trade an API token for an HttpOnly session cookie, then go where we were headed.

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const token = document.getElementById("token").value.trim();
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    const resp = await fetch("/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ token }),
    });
    if (!resp.ok) {
      let msg = `Sign-in failed (HTTP ${resp.status})`;
      try { msg = (await resp.json()).error.message; } catch { /* keep default */ }
      throw new Error(msg);
    }
    const next = form.dataset.next || "/console/alerts";
    location.assign(next.startsWith("/console/") ? next : "/console/alerts");
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    button.disabled = false;
    document.getElementById("token").select();
  }
});
