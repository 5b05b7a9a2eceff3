// The compare view: shows or hides the model's heatmap layer over both photos (an older heatmap
// with the photo blended in replaces the photo instead).
// Without JavaScript the "Show heatmap" link reloads the page with the heatmaps instead.
// Its two labels come translated from the page (data-show-label, data-hide-label).
(function () {
  "use strict";
  var toggle = document.getElementById("heatmap-toggle");
  var link = document.getElementById("heatmap-link");
  var photos = Array.prototype.slice.call(document.querySelectorAll(".compare-photo"));
  var withHeatmap = photos.filter(function (img) { return img.dataset.heatmap; });
  var layers = Array.prototype.slice.call(document.querySelectorAll(".compare-layer"));
  if (!toggle || !(withHeatmap.length || layers.length)) return;
  var showing = toggle.getAttribute("aria-pressed") === "true";
  function render() {
    withHeatmap.forEach(function (img) { img.src = showing ? img.dataset.heatmap : img.dataset.photo; });
    layers.forEach(function (layer) { layer.hidden = !showing; });
    toggle.setAttribute("aria-pressed", showing ? "true" : "false");
    toggle.textContent = showing ? toggle.dataset.hideLabel : toggle.dataset.showLabel;
  }
  toggle.hidden = false;
  if (link) link.hidden = true;
  toggle.addEventListener("click", function () { showing = !showing; render(); });
})();
