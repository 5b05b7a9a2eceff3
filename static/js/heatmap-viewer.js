/*
 * Case page heatmap viewer: the heatmap is a transparent layer over the photo; a checkbox
 * shows or hides it, a slider sets its opacity, and two buttons zoom (the stage scrolls).
 * Event delegation on the document, so cards swapped in by case-result.js work too.
 */
(function () {
  "use strict";

  var STEPS = [1, 1.5, 2, 3, 4];

  function viewerOf(element) {
    return element.closest ? element.closest("[data-viewer]") : null;
  }

  function layerOf(viewer) {
    return viewer.querySelector(".viewer-layer");
  }

  function applyOpacity(viewer) {
    var layer = layerOf(viewer);
    var toggle = viewer.querySelector("[data-viewer-toggle]");
    var slider = viewer.querySelector("[data-viewer-opacity]");
    if (!layer) return;
    var shown = !toggle || toggle.checked;
    layer.style.opacity = shown ? String((slider ? Number(slider.value) : 70) / 100) : "0";
    if (slider) slider.disabled = !shown;
  }

  document.addEventListener("input", function (event) {
    var viewer = viewerOf(event.target);
    if (viewer) applyOpacity(viewer);
  });
  document.addEventListener("change", function (event) {
    var viewer = viewerOf(event.target);
    if (viewer) applyOpacity(viewer);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-viewer-zoom]");
    if (!button) return;
    var viewer = viewerOf(button);
    var zoom = viewer && viewer.querySelector(".viewer-zoom");
    if (!zoom) return;
    var index = Math.max(0, STEPS.indexOf(Number(zoom.dataset.zoom || 1)));
    index = Math.min(STEPS.length - 1, Math.max(0, index + Number(button.dataset.viewerZoom)));
    zoom.dataset.zoom = String(STEPS[index]);
    zoom.style.width = STEPS[index] * 100 + "%";
  });
})();
