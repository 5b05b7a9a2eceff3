// The compare view: toggles both photos between the photo and the model's heatmap in place.
// Without JavaScript the "Show heatmap" link reloads the page with the heatmaps instead.
// Its two labels come translated from the page (data-show-label, data-hide-label).
(function () {
  "use strict";
  var toggle = document.getElementById("heatmap-toggle");
  var link = document.getElementById("heatmap-link");
  var photos = Array.prototype.slice.call(document.querySelectorAll(".compare-photo"));
  var withHeatmap = photos.filter(function (img) { return img.dataset.heatmap; });
  if (!toggle || !withHeatmap.length) return;
  var showing = toggle.getAttribute("aria-pressed") === "true";
  function render() {
    withHeatmap.forEach(function (img) { img.src = showing ? img.dataset.heatmap : img.dataset.photo; });
    toggle.setAttribute("aria-pressed", showing ? "true" : "false");
    toggle.textContent = showing ? toggle.dataset.hideLabel : toggle.dataset.showLabel;
  }
  toggle.hidden = false;
  if (link) link.hidden = true;
  toggle.addEventListener("click", function () { showing = !showing; render(); });
})();
