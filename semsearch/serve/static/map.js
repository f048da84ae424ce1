// Themes map: a tooltip with the paper's title on hover or keyboard focus. The map works without
// this (each point has an SVG <title> and is a link); text is set with textContent, never as HTML.
(function () {
  var map = document.querySelector("svg.theme-map");
  var tip = document.getElementById("map-tip");
  if (!map || !tip) return;
  var figure = map.parentNode;
  function show(event) {
    var point = event.target.closest && event.target.closest("a.point");
    if (!point) return;
    tip.textContent = point.getAttribute("data-title") + " (" + point.getAttribute("data-theme") + ")";
    tip.hidden = false;
    var box = figure.getBoundingClientRect();
    var dot = point.getBoundingClientRect();
    var left = Math.min(dot.left - box.left + 12, box.width - tip.offsetWidth - 4);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (dot.top - box.top - tip.offsetHeight - 6) + "px";
  }
  function hide(event) {
    if (event.target.closest && event.target.closest("a.point")) tip.hidden = true;
  }
  map.addEventListener("mouseover", show);
  map.addEventListener("focusin", show);
  map.addEventListener("mouseout", hide);
  map.addEventListener("focusout", hide);
})();
