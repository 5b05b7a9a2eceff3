// Photos on the review page: zoom in and out, and switch the model's heatmap on and off.
(function () {
  "use strict";
  var STEPS = [1, 1.5, 2, 3, 4];
  document.querySelectorAll(".viewer").forEach(function (viewer) {
    var image = viewer.querySelector(".viewer-image");
    var frame = viewer.querySelector(".viewer-frame");
    var step = 0;
    function apply() {
      image.style.width = STEPS[step] * 100 + "%";
      image.style.maxWidth = "none";
      frame.classList.toggle("is-zoomed", step > 0);
    }
    viewer.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        step = Math.max(0, Math.min(STEPS.length - 1, step + (button.dataset.zoom === "in" ? 1 : -1)));
        apply();
      });
    });
    var toggle = viewer.querySelector("[data-heatmap-toggle]");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var on = toggle.getAttribute("aria-pressed") !== "true";
        toggle.setAttribute("aria-pressed", on ? "true" : "false");
        image.src = on ? viewer.dataset.heatmap : viewer.dataset.photo;
        var text = document.body.dataset;
        var heatmapAlt = text.heatmapAlt || "Heatmap over the photo: where the model looked";
        image.alt = on ? heatmapAlt : image.alt === heatmapAlt ? text.photoAlt || "Photo of the lesion" : image.alt;
      });
    }
  });
})();
