// monthlydocs portal: uploads with a progress bar per file, and every form of the page
// sent in the background so the page updates without a reload. Without this script
// the same forms work as plain posts.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function slotOf(node) {
    return node.closest(".slot");
  }

  function post(form, body, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "json";
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (event) {
          if (event.lengthComputable) onProgress(event.loaded / event.total);
        });
      }
      xhr.addEventListener("load", function () {
        resolve({ status: xhr.status, data: xhr.response });
      });
      xhr.addEventListener("error", function () { resolve({ status: 0, data: null }); });
      xhr.addEventListener("abort", function () { resolve({ status: 0, data: null }); });
      xhr.send(body);
    });
  }

  function firstMessage(data, fallback) {
    if (data && data.messages && data.messages.length) return data.messages[0].text;
    return fallback;
  }

  // Put the server's fresh rendering of a slot and of the summary in place.
  function apply(data, slot, keep) {
    if (!data) return slot;
    if (data.summary) {
      var summary = document.getElementById("summary");
      if (summary) summary.outerHTML = data.summary;
    }
    if (data.slot && slot) {
      var holder = document.createElement("div");
      holder.innerHTML = data.slot.trim();
      var fresh = holder.firstElementChild;
      slot.replaceWith(fresh);
      slot = fresh;
      var queue = slot.querySelector(".queue");
      (keep || []).forEach(function (item) { if (queue) queue.appendChild(item); });
      var title = slot.querySelector("h2");
      if (title) title.focus();
    }
    return slot;
  }

  function queueItem(form, file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", file.name);
    var status = document.createElement("span");
    status.className = "status";
    status.setAttribute("role", "status");
    status.textContent = form.dataset.waiting;
    item.append(name, bar, status);
    form.querySelector(".queue").appendChild(item);
    return { item: item, bar: bar, status: status };
  }

  async function upload(form, files) {
    var slot = slotOf(form);
    var token = form.querySelector("input[name=csrf_token]").value;
    var limit = Number(form.dataset.maxBytes);
    var rows = Array.prototype.map.call(files, function (file) {
      return { file: file, ui: queueItem(form, file) };
    });
    var failed = [];
    var last = null;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (row.file.size > limit) {
        // Refused here, before minutes of sending: the server would refuse it anyway.
        row.ui.item.classList.add("failed");
        row.ui.bar.remove();
        row.ui.status.textContent = form.dataset.tooBig.replace("{name}", row.file.name);
        failed.push(row.ui.item);
        continue;
      }
      var body = new FormData();
      body.append("csrf_token", token);
      body.append("files", row.file, row.file.name);
      row.ui.status.textContent = form.dataset.sending;
      var answer = await post(form, body, function (share) {
        row.ui.bar.value = Math.round(share * 100);
      });
      if (answer.status >= 200 && answer.status < 300 && answer.data && answer.data.ok) {
        row.ui.bar.value = 100;
        row.ui.status.textContent = form.dataset.sent;
        last = answer.data;
      } else {
        row.ui.item.classList.add("failed");
        row.ui.bar.remove();
        row.ui.status.textContent = firstMessage(answer.data, form.dataset.failed);
        failed.push(row.ui.item);
        if (answer.data) last = answer.data;
      }
    }
    if (last) apply(last, slot, failed);
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches(".file-input") || !input.files.length) return;
    var form = input.closest("form[data-upload]");
    var files = Array.prototype.slice.call(input.files);
    input.value = "";
    upload(form, files);
  });

  document.addEventListener("submit", async function (event) {
    var form = event.target;
    if (form.matches("form[data-upload]")) {
      event.preventDefault();
      var input = form.querySelector(".file-input");
      if (input.files.length) upload(form, Array.prototype.slice.call(input.files));
      else input.click();
      return;
    }
    if (!form.matches("form[data-xhr]")) return;
    event.preventDefault();
    var slot = slotOf(form);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var answer = await post(form, new FormData(form));
    if (answer.data) {
      apply(answer.data, slot);
    } else {
      buttons.forEach(function (b) { b.disabled = false; });
      form.submit();  // no answer we can read: let the browser do a plain post
    }
  });

  // Drag and drop onto a slot that accepts files.
  function dropTarget(event) {
    var slot = event.target.closest && event.target.closest(".slot");
    return slot && slot.querySelector("form[data-upload]") ? slot : null;
  }
  document.addEventListener("dragover", function (event) {
    var slot = dropTarget(event);
    if (!slot) return;
    event.preventDefault();
    slot.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (event) {
    var slot = dropTarget(event);
    if (slot && !slot.contains(event.relatedTarget)) slot.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    var slot = dropTarget(event);
    if (!slot) return;
    event.preventDefault();
    slot.classList.remove("dragging");
    var form = slot.querySelector("form[data-upload]");
    var input = form.querySelector(".file-input");
    var files = Array.prototype.slice.call(event.dataTransfer.files);
    if (!input.multiple) files = files.slice(0, 1);
    if (files.length) upload(form, files);
  });
})();
