// procman dashboard: confirmations for destructive actions and a live refresh of the overview's
// numbers. Text only (textContent): nothing from the server is ever inserted as markup.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function refreshOverview(section) {
  var url = section.getAttribute("data-refresh");
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (data) {
      if (!data) { return; }
      var busy = data.workers.filter(function (w) { return w.job !== null; }).length;
      var values = {
        processed_total: data.counts.processed_total,
        failed_total: data.counts.failed_total,
        busy: busy,
        idle: data.workers.length - busy
      };
      data.queues.forEach(function (q) { values["queued:" + q.name] = q.queued; });
      document.querySelectorAll("[data-live]").forEach(function (element) {
        var key = element.getAttribute("data-live");
        if (Object.prototype.hasOwnProperty.call(values, key)) {
          element.textContent = String(values[key]);
        }
      });
    })
    .catch(function () { /* the next refresh tries again */ });
}

document.addEventListener("DOMContentLoaded", function () {
  var section = document.querySelector("[data-refresh]");
  if (section) {
    window.setInterval(function () { refreshOverview(section); }, 5000);
  }
});
