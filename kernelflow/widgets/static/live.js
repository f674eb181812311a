// kernelflow live views: the kernel renders HTML (kernelflow/widgets/_render.py); this
// module shows it, keeps elapsed times and countdowns ticking between updates, reports
// clicks on elements with data-kf-id, and tells the kernel whether the view is visible
// (so views that poll the store stop while nobody looks).

// The same steps as kernelflow/_format.py format_duration, so a ticking time reads as the
// kernel rendered it: each unit compares the rounded figure (59.97 s is "1 min 0 s").
function formatSeconds(seconds) {
  seconds = Math.max(0, seconds);
  const millis = Math.round(seconds * 1000);
  if (millis < 1000) return millis === 0 && seconds > 0 ? "<1 ms" : `${millis} ms`;
  const tenths = Math.round(seconds * 10);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
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
