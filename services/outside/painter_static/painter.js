// Retouch's mask painter: paint over the picture, then send the mask, the prompt and the count.
//
// The drawing is kept as a list of operations (stroke, rectangle, lasso, invert, clear), drawn on a
// canvas at the picture's natural size; undo drops the last one and draws the rest again. The mask
// sent is that same list drawn white on black (white = change), a PNG at the natural size. Pictures
// larger than phones allow for a canvas (about 16 megapixels on iOS) are painted at a reduced size
// of the same shape, which the server scales up.
"use strict";

(() => {
  const PAINT = "#ff00c8";
  const picture = document.getElementById("picture");
  const paint = document.getElementById("paint");
  const guide = document.getElementById("guide");
  const form = document.getElementById("edit-form");
  const statusLine = document.getElementById("status");
  const sizeInput = document.getElementById("brush-size");
  const undoButton = document.getElementById("undo");
  const clearButton = document.getElementById("clear");
  const submitButton = document.getElementById("submit");
  const toolButtons = Array.from(document.querySelectorAll("button[data-tool]"));

  const ops = [];
  let tool = "brush";
  let current = null;
  let activePointer = null;
  let finished = false;
  const paintContext = paint.getContext("2d");
  const guideContext = guide.getContext("2d");

  // The upstream makes pictures of at most 2048 a side, so a finer mask adds nothing; the server refuses more.
  const MAX_SIDE = 2048;
  const MAX_AREA = 2048 * 2048;

  function setUp() {
    const { naturalWidth: width, naturalHeight: height } = picture;
    const factor = Math.min(1, MAX_SIDE / Math.max(width, height), Math.sqrt(MAX_AREA / (width * height)));
    paint.width = guide.width = Math.max(1, Math.round(width * factor));
    paint.height = guide.height = Math.max(1, Math.round(height * factor));
    redraw();
    document.body.dataset.ready = "true";
  }

  function showStatus(state, message) {
    statusLine.className = state;
    statusLine.textContent = message;
  }

  // Canvas pixels per CSS pixel: the layer is shown scaled to fit the screen.
  function scale() {
    return paint.width / paint.getBoundingClientRect().width;
  }

  function pointOf(event) {
    const box = paint.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * paint.width) / box.width,
      ((event.clientY - box.top) * paint.height) / box.height,
    ];
  }

  function apply(context, op, colour) {
    const { width, height } = context.canvas;
    context.save();
    context.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
    context.fillStyle = colour;
    context.strokeStyle = colour;
    if (op.type === "stroke") {
      const [first, ...rest] = op.points;
      context.beginPath();
      if (rest.length === 0) {
        context.arc(first[0], first[1], op.size / 2, 0, 2 * Math.PI);
        context.fill();
      } else {
        context.lineWidth = op.size;
        context.lineCap = "round";
        context.lineJoin = "round";
        context.moveTo(first[0], first[1]);
        for (const [x, y] of rest) context.lineTo(x, y);
        context.stroke();
      }
    } else if (op.type === "rect") {
      const [x0, y0] = op.from;
      const [x1, y1] = op.to;
      context.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    } else if (op.type === "lasso") {
      context.beginPath();
      context.moveTo(op.points[0][0], op.points[0][1]);
      for (const [x, y] of op.points.slice(1)) context.lineTo(x, y);
      context.closePath();
      context.fill();
    } else if (op.type === "invert") {
      // Painted pixels are fully opaque, so "xor" with a full fill swaps painted and unpainted.
      context.globalCompositeOperation = "xor";
      context.fillRect(0, 0, width, height);
    } else if (op.type === "clear") {
      context.clearRect(0, 0, width, height);
    }
    context.restore();
  }

  function render(context, colour) {
    context.clearRect(0, 0, context.canvas.width, context.canvas.height);
    for (const op of ops) apply(context, op, colour);
  }

  function updateButtons() {
    undoButton.disabled = ops.length === 0;
    clearButton.disabled = ops.length === 0 || ops[ops.length - 1].type === "clear";
  }

  function redraw() {
    render(paintContext, PAINT);
    updateButtons();
  }

  function commit(op) {
    ops.push(op);
    apply(paintContext, op, PAINT);
    updateButtons();
  }

  function drawGuide() {
    guideContext.clearRect(0, 0, guide.width, guide.height);
    if (!current || current.type === "stroke") return;
    guideContext.save();
    guideContext.lineWidth = 2 * scale();
    guideContext.setLineDash([8 * scale(), 6 * scale()]);
    guideContext.strokeStyle = "#ffffff";
    guideContext.fillStyle = "rgba(255, 0, 200, 0.3)";
    guideContext.beginPath();
    if (current.type === "rect") {
      const [x0, y0] = current.from;
      const [x1, y1] = current.to;
      guideContext.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    } else {
      guideContext.moveTo(current.points[0][0], current.points[0][1]);
      for (const [x, y] of current.points.slice(1)) guideContext.lineTo(x, y);
      guideContext.closePath();
    }
    guideContext.fill();
    guideContext.stroke();
    guideContext.restore();
  }

  function extend(point) {
    if (current.type === "stroke") {
      const last = current.points[current.points.length - 1];
      current.points.push(point);
      // Draw just the new segment now; the whole stroke is one operation for undo.
      apply(paintContext, { ...current, points: [last, point] }, PAINT);
    } else if (current.type === "rect") {
      current.to = point;
    } else {
      current.points.push(point);
    }
    drawGuide();
  }

  function finish() {
    const op = current;
    current = null;
    activePointer = null;
    drawGuide();
    if (op.type === "stroke") {
      ops.push(op);
      updateButtons();
    } else if (op.type === "rect" && op.from[0] !== op.to[0] && op.from[1] !== op.to[1]) {
      commit(op);
    } else if (op.type === "lasso" && op.points.length >= 3) {
      commit(op);
    }
  }

  paint.addEventListener("pointerdown", (event) => {
    if (!event.isPrimary || event.button !== 0 || current || !paint.width || finished) return;
    event.preventDefault();
    paint.setPointerCapture(event.pointerId);
    activePointer = event.pointerId;
    const point = pointOf(event);
    if (tool === "brush" || tool === "eraser") {
      current = { type: "stroke", erase: tool === "eraser", size: Number(sizeInput.value) * scale(), points: [point] };
      apply(paintContext, current, PAINT);
    } else if (tool === "rect") {
      current = { type: "rect", from: point, to: point };
    } else {
      current = { type: "lasso", points: [point] };
    }
  });

  paint.addEventListener("pointermove", (event) => {
    if (!current || event.pointerId !== activePointer) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) extend(pointOf(each));
  });

  for (const type of ["pointerup", "pointercancel"]) {
    paint.addEventListener(type, (event) => {
      if (current && event.pointerId === activePointer) finish();
    });
  }

  for (const button of toolButtons) {
    button.addEventListener("click", () => {
      tool = button.dataset.tool;
      for (const other of toolButtons) other.setAttribute("aria-pressed", String(other === button));
    });
  }

  document.getElementById("invert").addEventListener("click", () => commit({ type: "invert" }));
  clearButton.addEventListener("click", () => commit({ type: "clear" }));
  undoButton.addEventListener("click", () => {
    ops.pop();
    redraw();
  });

  function maskBlob() {
    const canvas = document.createElement("canvas");
    canvas.width = paint.width;
    canvas.height = paint.height;
    const context = canvas.getContext("2d");
    render(context, "#ffffff");
    context.globalCompositeOperation = "destination-over";
    context.fillStyle = "#000000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!paint.width || finished) return;
    submitButton.disabled = true;
    showStatus("sending", "Sending…");
    const data = new FormData();
    data.append("mask", await maskBlob(), "mask.png");
    data.append("prompt", form.elements.prompt.value);
    data.append("count", form.elements.count.value);
    let answer;
    try {
      const response = await fetch(form.action, { method: "POST", body: data, cache: "no-store" });
      answer = await response.json();
    } catch {
      showStatus("failed", "Retouch could not be reached; check the connection and press Edit again.");
      submitButton.disabled = false;
      return;
    }
    showStatus(answer.status, answer.message);
    // Queued or posted, the link is spent; so it is when it expired or was used elsewhere.
    finished = ["queued", "posted", "expired", "used", "malformed", "bad-signature", "unavailable"].includes(
      answer.status,
    );
    submitButton.disabled = finished;
    document.body.dataset.answer = answer.status;
  });

  picture.addEventListener("error", () => {
    showStatus("unavailable", "The picture could not be loaded; the link may have expired.");
  });
  if (picture.complete && picture.naturalWidth) setUp();
  else picture.addEventListener("load", setUp);
})();
