// Tollway console: copy buttons and charts (Chart.js, served locally). No inline scripts (CSP).
document.querySelectorAll("button.copy").forEach(function (b) {
  b.addEventListener("click", function () {
    var el = document.getElementById(b.dataset.copy);
    if (el && navigator.clipboard) { navigator.clipboard.writeText(el.textContent.trim()); }
  });
});
document.querySelectorAll("button[data-confirm]").forEach(function (b) {
  b.addEventListener("click", function (ev) {
    if (!window.confirm(b.dataset.confirm)) { ev.preventDefault(); }
  });
});
(function () {
  var node = document.getElementById("chart-data");
  if (!node || !window.Chart) { return; }
  var d = JSON.parse(node.textContent);
  var opts = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } };
  new Chart(document.getElementById("chart-day"), { type: "bar",
    data: { labels: d.days, datasets: [{ data: d.day_values, backgroundColor: "#1f5fbf" }] }, options: opts });
  new Chart(document.getElementById("chart-model"), { type: "doughnut",
    data: { labels: d.models, datasets: [{ data: d.model_values }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { position: "right" } } } });
})();
