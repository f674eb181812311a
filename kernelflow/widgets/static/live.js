// kernelflow live views: the kernel renders HTML (kernelflow/widgets/_render.py); this
// module shows it, keeps elapsed times and countdowns ticking between updates, reports
// clicks on elements with data-kf-id, and tells the kernel whether the view is visible
// (so views that poll the store stop while nobody looks).

function formatSeconds(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

// The comm may be gone (kernel restarting or shut down, view disposed): a message then has
// nowhere to go, and widget managers throw "Cannot send" for it. Nothing is lost by
// dropping it, since a new kernel starts with no views to report to.
function safeSend(model, message) {
  try {
    model.send(message);
  } catch (err) {
    // dropped on purpose: see above
  }
}

function render({ model, el }) {
  const body = document.createElement("div");
  body.className = "kf-live";
  el.appendChild(body);
  const viewId = Math.random().toString(36).slice(2);
  let offset = 0; // kernel clock minus browser clock, in seconds

  function tick() {
    const now = Date.now() / 1000 + offset;
    for (const node of body.querySelectorAll("[data-kf-since]")) {
      node.textContent = formatSeconds(now - Number(node.dataset.kfSince));
    }
    for (const node of body.querySelectorAll("[data-kf-until]")) {
      node.textContent = formatSeconds(Number(node.dataset.kfUntil) - now);
    }
  }

  function draw() {
    body.innerHTML = model.get("html");
    const root = body.querySelector("[data-kf-now]");
    if (root) offset = Number(root.dataset.kfNow) - Date.now() / 1000;
    tick();
  }

  function onClick(event) {
    const target = event.target.closest("[data-kf-id]");
    if (!target || !body.contains(target)) return;
    event.preventDefault();
    safeSend(model, {
      event: "click",
      id: target.dataset.kfId,
      action: target.dataset.kfAction || "select",
    });
  }

  let visible = null;
  function report(now) {
    const shown = now && document.visibilityState === "visible";
    if (shown === visible) return;
    visible = shown;
    safeSend(model, { event: "visible", view: viewId, visible: shown });
  }
  let intersecting = false;
  const observer = new IntersectionObserver((entries) => {
    intersecting = entries.some((entry) => entry.isIntersecting);
    report(intersecting);
  });
  const onVisibility = () => report(intersecting);

  body.addEventListener("click", onClick);
  model.on("change:html", draw);
  document.addEventListener("visibilitychange", onVisibility);
  observer.observe(el);
  draw();
  const timer = setInterval(tick, 500);
  return () => {
    clearInterval(timer);
    observer.disconnect();
    document.removeEventListener("visibilitychange", onVisibility);
    model.off("change:html", draw);
    body.removeEventListener("click", onClick);
    if (visible) safeSend(model, { event: "visible", view: viewId, visible: false });
  };
}

export default { render };
