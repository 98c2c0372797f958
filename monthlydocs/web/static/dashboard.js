// monthlydocs dashboard: live updates, "Copy link", confirmations, list filters.
// Every page works without this script; it only saves reloads and clicks.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // -- live updates: ask for events newer than the last one seen ----------------------
  var body = document.body;
  var liveUrl = body.dataset.liveUrl;
  var latest = Number(body.dataset.latest || 0);
  var interval = Number(body.dataset.interval || 3000);
  var notices = document.getElementById("live");
  var timer = null;

  function getJson(url) {
    return fetch(url, {
      headers: { "X-Requested-With": "XMLHttpRequest", "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      if (response.status === 401) {
        stop();  // signed out meanwhile: the next click goes to the login page
        return null;
      }
      return response.ok ? response.json() : null;
    });
  }

  function notify(notice) {
    var box = document.createElement("div");
    box.className = "notice";
    var text = notice.url ? document.createElement("a") : document.createElement("span");
    text.textContent = notice.text;
    if (notice.url) text.href = notice.url;
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", body.dataset.dismiss || "Dismiss");
    close.addEventListener("click", function () { box.remove(); });
    box.append(text, close);
    notices.appendChild(box);
    while (notices.children.length > 4) notices.firstElementChild.remove();
    setTimeout(function () { box.remove(); }, 60000);
  }

  // Put the overview's fresh counts and table in place, keeping focus and scroll.
  function refreshOverview() {
    var holder = document.getElementById("overview");
    if (!holder) return Promise.resolve();
    var before = {};
    holder.querySelectorAll("tbody tr[id]").forEach(function (row) {
      before[row.id] = row.className + row.textContent;
    });
    return getJson(holder.dataset.refreshUrl).then(function (data) {
      if (!data || !data.ok) return;
      var counts = document.getElementById("counts");
      var table = document.getElementById("table");
      if (counts) counts.outerHTML = data.counts;
      if (table) table.outerHTML = data.table;
      holder.querySelectorAll("tbody tr[id]").forEach(function (row) {
        if (before[row.id] !== row.className + row.textContent) row.classList.add("fresh");
      });
    });
  }

  function poll() {
    timer = null;
    getJson(liveUrl + "?after=" + latest).then(function (data) {
      if (!data || !data.ok) return;
      var changed = data.latest > latest;
      latest = data.latest;
      (data.notices || []).forEach(notify);
      if (changed) return refreshOverview();
    }).catch(function () { /* the server is restarting: try again later */ })
      .then(schedule);
  }

  function schedule() {
    if (liveUrl && !timer && !document.hidden) timer = setTimeout(poll, interval);
  }

  function stop() {
    liveUrl = null;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden && timer) {
      clearTimeout(timer);
      timer = null;
    } else {
      schedule();
    }
  });
  schedule();

  // -- "Copy link", with the text field as the fallback ------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.dataset.copy);
    var status = document.getElementById("copy-status");
    function say(text) { if (status) status.textContent = text; }
    field.focus();
    field.select();
    var copied = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(field.value)
      : Promise.reject(new Error("no clipboard"));
    copied.then(function () { say(button.dataset.copied); }, function () {
      // Older browsers: the text is selected; execCommand may still copy it.
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
      say(ok ? button.dataset.copied : button.dataset.failed);
    });
  });

  // -- confirmations before actions that cannot be undone ----------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // -- filter a long list of checkboxes by typing ------------------------------------
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.dataset.filter) return;
    var wanted = input.value.trim().toLowerCase();
    document.querySelectorAll(input.dataset.filter + " label").forEach(function (label) {
      label.hidden = wanted !== "" && label.textContent.toLowerCase().indexOf(wanted) < 0;
    });
  });
})();
