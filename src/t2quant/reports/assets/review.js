// t2quant participant report: zoomable figures and the rater's review, offline, no server.
// Ratings live in this browser's localStorage (one entry per report file) until exported as
// sub-X_desc-ratings.tsv, which `t2quant BIDS OUT group --ratings DIR` applies.
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("t2quant-review").textContent);
  const storeKey = "t2quant-ratings:" + location.pathname + ":" + config.participant;
  const raterKey = "t2quant-rater";
  const columns = ["rater", "time", "participant_id", "session", "level", "decision", "grade",
                   "reason"];
  const rows = [...document.querySelectorAll("tr.disc")];
  const keyOf = (row) => row.dataset.session + "|" + row.dataset.level;
  let ratings = {};
  try { ratings = JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { ratings = {}; }

  function rater(ask) {
    let name = localStorage.getItem(raterKey) || "";
    if (!name || ask) {
      name = (prompt("Your name or initials, saved with every rating:", name) || "").trim();
      if (name) localStorage.setItem(raterKey, name);
      else name = localStorage.getItem(raterKey) || "";
    }
    document.getElementById("rater-name").textContent = name || "(no rater yet)";
    return name;
  }

  function paint(row) {
    const r = ratings[keyOf(row)] || {};
    row.querySelectorAll("button[data-decision]").forEach((b) =>
      b.setAttribute("aria-pressed", String(r.decision === b.dataset.decision)));
    row.querySelectorAll("button[data-grade]").forEach((b) =>
      b.setAttribute("aria-pressed", String(r.grade === Number(b.dataset.grade))));
    const reason = row.querySelector("input.reason");
    if (document.activeElement !== reason) reason.value = r.reason || "";
    row.classList.toggle("rated", Boolean(r.time));
    row.classList.toggle("excluded", r.decision === "exclude");
  }

  function save() {
    localStorage.setItem(storeKey, JSON.stringify(ratings));
    const n = rows.filter((row) => ratings[keyOf(row)]).length;  // not those of removed discs
    document.getElementById("rated-count").textContent = n + (n === 1 ? " disc" : " discs") + " rated";
  }

  // One change of one disc: {decision}, {grade} or {reason}; a second click undoes a choice.
  function rate(row, change) {
    const who = rater(false);
    if (!who) return;
    const key = keyOf(row);
    const r = Object.assign({decision: "", grade: null, reason: ""}, ratings[key]);
    const typed = clean(row.querySelector("input.reason").value);
    if (!("reason" in change) && typed && !r.reason) r.reason = typed;  // typed before any rater
    if ("decision" in change) r.decision = r.decision === change.decision ? "" : change.decision;
    if ("grade" in change) r.grade = r.grade === change.grade ? null : change.grade;
    if ("reason" in change) r.reason = change.reason;
    if (r.decision === "exclude" && !r.reason.trim()) {
      const why = (prompt("Why exclude " + row.dataset.session + " " + row.dataset.level + "?") || "").trim();
      if (!why) { paint(row); return; }
      r.reason = why;
    }
    if (!r.decision && r.grade === null && !r.reason) delete ratings[key];
    else ratings[key] = Object.assign(r, {rater: who, time: new Date().toISOString()});
    save();
    paint(row);
  }

  const clean = (text) => String(text).replace(/[\t\r\n]+/g, " ").trim();

  function exportRatings() {
    const lines = [columns.join("\t")];
    const missing = [];
    for (const row of rows) {
      const r = ratings[keyOf(row)];
      if (!r) continue;
      const decision = r.decision || "accept";
      if (decision === "exclude" && !r.reason.trim()) missing.push(row.dataset.level);
      lines.push([r.rater, r.time, config.participant, row.dataset.session, row.dataset.level,
                  decision, r.grade === null ? "n/a" : r.grade, r.reason ? r.reason : "n/a"]
                 .map(clean).join("\t"));
    }
    if (lines.length === 1) { alert("Nothing rated yet."); return; }
    if (missing.length) { alert("Give a reason for each exclusion: " + missing.join(", ")); return; }
    const blob = new Blob([lines.join("\n") + "\n"], {type: "text/tab-separated-values"});
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = config.file;
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  for (const row of rows) {
    row.querySelectorAll("button[data-decision]").forEach((b) =>
      b.addEventListener("click", () => rate(row, {decision: b.dataset.decision})));
    row.querySelectorAll("button[data-grade]").forEach((b) =>
      b.addEventListener("click", () => rate(row, {grade: Number(b.dataset.grade)})));
    // Without a rater yet, a typed reason waits for the next button of its row: asking the
    // name here would pop a dialog between that button's press and release and lose the click.
    row.querySelector("input.reason").addEventListener("change", (e) => {
      if (localStorage.getItem(raterKey)) rate(row, {reason: clean(e.target.value)});
    });
    paint(row);
  }
  document.getElementById("export-ratings").addEventListener("click", exportRatings);
  document.getElementById("change-rater").addEventListener("click", () => rater(true));
  document.getElementById("rater-name").textContent = localStorage.getItem(raterKey) || "(no rater yet)";
  save();

  // Zoom: a click on a figure enlarges it to the window; a click or Escape closes it.
  document.addEventListener("click", (e) => {
    const zoom = e.target.closest(".zoom");
    if (zoom) zoom.classList.toggle("zoomed");
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") document.querySelectorAll(".zoom.zoomed").forEach((z) => z.classList.remove("zoomed"));
    if (e.key === "Enter" && e.target.classList.contains("zoom")) e.target.classList.toggle("zoomed");
  });
})();
