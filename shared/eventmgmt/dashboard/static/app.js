// Dashboard behaviour without frameworks: keep the token, refresh, and send writes with it.
(function () {
  const tokenInput = document.getElementById("token");
  if (tokenInput) {
    tokenInput.value = localStorage.getItem("eventmgmt-token") || "";
    tokenInput.addEventListener("change", () => localStorage.setItem("eventmgmt-token", tokenInput.value));
  }
  const csrf = document.querySelector('meta[name="csrf-token"]');
  function headers() {
    // NOTE: the server refuses a browser's write without the token its pages carry (CSRF).
    const h = { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" };
    const t = localStorage.getItem("eventmgmt-token");
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }
  async function send(url, body, out) {
    const r = await fetch(url, { method: "POST", headers: headers(), body: JSON.stringify(body || {}) });
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (out) {
      out.textContent = r.ok ? "done" : (data.error || ("HTTP " + r.status));
      out.className = "msg " + (r.ok ? "" : "error");
    }
    if (r.ok) setTimeout(() => location.reload(), 300);
    return r.ok;
  }
  document.querySelectorAll("button[data-post]").forEach((b) => {
    b.addEventListener("click", () => send(b.dataset.post, { by: localStorage.getItem("eventmgmt-user") || "dashboard" },
                                         document.getElementById(b.dataset.out)));
  });
  document.querySelectorAll("form[data-post]").forEach((f) => {
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = Object.fromEntries(new FormData(f).entries());
      f.querySelectorAll("input[type=checkbox]").forEach((c) => { body[c.name] = c.checked; });
      send(f.dataset.post, body, document.getElementById(f.dataset.out));
    });
  });
  const main = document.querySelector("main[data-refresh]");
  if (main) {
    setInterval(async () => {
      // NOTE: not while the engineer is typing in the board's filter boxes (the refresh replaces them)
      const typing = document.activeElement && main.contains(document.activeElement) && document.activeElement.matches("input, select");
      if (document.hidden || typing) return;
      const r = await fetch(location.href, { headers: { "X-Partial": "1" } });
      if (r.ok) { main.innerHTML = await r.text(); main.dataset.refreshedAt = new Date().toISOString(); }
    }, Number(main.dataset.refresh) * 1000);
  }
})();
