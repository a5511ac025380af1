// Render every .tex element with the bundled KaTeX (no network). A formula that fails to
// render is marked .tex-error and reported on the console, which the browser test treats as a failure.
(function () {
  function render() {
    var nodes = document.querySelectorAll(".tex");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var source = el.textContent;
      try {
        katex.render(source, el, {displayMode: el.classList.contains("display"), throwOnError: true, strict: "ignore", trust: false});
        el.classList.add("rendered");
      } catch (err) {
        el.classList.add("tex-error");
        console.error("hjsym: formula failed to render: " + err.message + " in: " + source);
      }
    }
    document.documentElement.setAttribute("data-math", "done");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", render); } else { render(); }
})();
