// Every heatmap layer lies exactly over its photo (boxes within 3 px) with the heatmap on, and the
// photo is still shown under it (drawn, opaque, and the element hit at its centre).
(async () => {
  const problems = [];
  const viewers = Array.from(document.querySelectorAll("[data-viewer]")).filter((v) => v.querySelector(".viewer-layer"));
  for (const [index, viewer] of viewers.entries()) {
    const toggle = viewer.querySelector("[data-viewer-toggle]");
    if (toggle && !toggle.checked) toggle.click();
    const photo = viewer.querySelector(".viewer-photo");
    const layer = viewer.querySelector(".viewer-layer");
    photo.scrollIntoView({block: "center"});
    await photo.decode().catch(() => null);
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    const a = photo.getBoundingClientRect(), b = layer.getBoundingClientRect();
    const name = `photo ${index + 1}`;
    for (const key of ["left", "top", "width", "height"]) {
      if (Math.abs(a[key] - b[key]) > 3) problems.push({kind: "heatmap not over its photo", detail: `${name}: ${key} ${a[key].toFixed(1)} vs ${b[key].toFixed(1)}`});
    }
    const layerOpacity = Number(getComputedStyle(layer).opacity);
    if (!(layerOpacity > 0 && layerOpacity < 1)) problems.push({kind: "heatmap not shown over the photo", detail: `${name}: layer opacity ${layerOpacity}`});
    if (!photo.complete || !photo.naturalWidth || getComputedStyle(photo).visibility !== "visible" || Number(getComputedStyle(photo).opacity) !== 1) {
      problems.push({kind: "photo hidden under the heatmap", detail: `${name}: not drawn or not opaque`});
    }
    const hit = document.elementFromPoint(a.left + a.width / 2, a.top + a.height / 2);
    if (hit !== photo && hit !== layer) problems.push({kind: "photo hidden under the heatmap", detail: `${name}: ${hit && hit.tagName} covers it`});
  }
  // The compare view: one button shows the layers over both photos.
  const frames = Array.from(document.querySelectorAll(".compare-frame")).filter((f) => f.querySelector(".compare-layer"));
  const toggle = document.getElementById("heatmap-toggle");
  if (frames.length && toggle && toggle.getAttribute("aria-pressed") !== "true") toggle.click();
  for (const [index, frame] of frames.entries()) {
    const photo = frame.querySelector(".compare-photo");
    const layer = frame.querySelector(".compare-layer");
    photo.scrollIntoView({block: "center"});
    await photo.decode().catch(() => null);
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    const a = photo.getBoundingClientRect(), b = layer.getBoundingClientRect();
    const name = `compared photo ${index + 1}`;
    for (const key of ["left", "top", "width", "height"]) {
      if (Math.abs(a[key] - b[key]) > 3) problems.push({kind: "heatmap not over its photo", detail: `${name}: ${key} ${a[key].toFixed(1)} vs ${b[key].toFixed(1)}`});
    }
    const layerOpacity = Number(getComputedStyle(layer).opacity);
    if (layer.hidden || !(layerOpacity > 0 && layerOpacity < 1)) problems.push({kind: "heatmap not shown over the photo", detail: `${name}: layer hidden or opacity ${layerOpacity}`});
    if (!photo.complete || !photo.naturalWidth || !photo.src.includes("/preview/") || Number(getComputedStyle(photo).opacity) !== 1) {
      problems.push({kind: "photo hidden under the heatmap", detail: `${name}: the photo is not shown`});
    }
    const hit = document.elementFromPoint(a.left + a.width / 2, a.top + a.height / 2);
    if (hit !== photo && hit !== layer) problems.push({kind: "photo hidden under the heatmap", detail: `${name}: ${hit && hit.tagName} covers it`});
  }
  return {viewers: viewers.length + frames.length, problems};
})
