// What the layout check measures on a page: sideways scroll, and text that overflows its box.
(() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    problems.push({kind: "sideways scroll", detail: `page ${root.scrollWidth} px wide in a ${window.innerWidth} px window`});
  }
  const describe = (element) => {
    const classes = element.classList.length ? "." + Array.from(element.classList).join(".") : "";
    return `${element.tagName.toLowerCase()}${classes} "${(element.innerText || "").trim().slice(0, 60)}"`;
  };
  const inScroller = (element) => {
    for (let up = element.parentElement; up; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll") return true;
    }
    return false;
  };
  for (const element of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "TEMPLATE", "OPTION", "SELECT", "TEXTAREA", "INPUT", "IMG", "SVG"].includes(element.tagName)) continue;
    const style = getComputedStyle(element);
    if (style.display === "none" || style.display === "inline" || style.display === "contents") continue;
    if (style.visibility === "hidden" || style.overflowX !== "visible") continue;  // clipped on purpose
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // not drawn (e.g. in a closed <details>)
    if (!(element.innerText || "").trim()) continue;
    if (element.scrollWidth > element.clientWidth + 1) {
      problems.push({kind: "text overflows its box", detail: `${describe(element)}: ${element.scrollWidth} > ${element.clientWidth} px`});
    } else if (box.right > window.innerWidth + 1 && !inScroller(element)) {
      problems.push({kind: "text past the window's edge", detail: `${describe(element)}: right edge at ${Math.round(box.right)} px`});
    }
  }
  return problems.slice(0, 20);
})
