// Hovering a skip edge of a unetviz diagram highlights the unit that pushed it and the one that pops it.
// Graphviz writes each edge's <title> as "tail->head" (node names); each node group's <title> is its name.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".uv-diagram").forEach(function (box) {
    var nodes = {};
    box.querySelectorAll("g.node").forEach(function (g) {
      var t = g.querySelector("title");
      if (t) { nodes[t.textContent.trim()] = g; }
    });
    box.querySelectorAll("g.uv-skip").forEach(function (edge) {
      var t = edge.querySelector("title");
      if (!t) { return; }
      var ends = t.textContent.split("->").map(function (s) { return nodes[s.trim()]; });
      function set(on) {
        box.classList.toggle("uv-dim", on);
        edge.classList.toggle("uv-on", on);
        ends.forEach(function (g) { if (g) { g.classList.toggle("uv-end", on); } });
      }
      edge.addEventListener("mouseenter", function () { set(true); });
      edge.addEventListener("mouseleave", function () { set(false); });
    });
  });
});
