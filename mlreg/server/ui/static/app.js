// mlreg's web UI: small progressive enhancements. Every page works without this file.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  // Forms that change something others rely on ask first (the server still decides).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // A copy button on every command.
  for (const box of document.querySelectorAll(".copy")) {
    const pre = box.querySelector("pre");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy: " + (pre.getAttribute("aria-label") || "command"));
    button.addEventListener("click", async () => {
      const text = pre.innerText;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (_) {  // not a secure context: select it for Ctrl+C
        const range = document.createRange();
        range.selectNodeContents(pre);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
    box.appendChild(button);
  }

  // Runs table: select all, count the selection, compare only with something selected.
  const form = document.getElementById("compare-form");
  if (form) {
    const boxes = [...form.querySelectorAll('input[name="run"]')];
    const all = document.getElementById("select-all");
    const count = document.getElementById("selected-count");
    const button = document.getElementById("compare-button");
    const update = () => {
      const n = boxes.filter((b) => b.checked).length;
      count.textContent = n ? `${n} selected` : "Select runs to compare them";
      button.disabled = n === 0;
      all.checked = n === boxes.length && n > 0;
      all.indeterminate = n > 0 && n < boxes.length;
    };
    all.hidden = false;
    all.addEventListener("change", () => {
      for (const b of boxes) b.checked = all.checked;
      update();
    });
    for (const b of boxes) b.addEventListener("change", update);
    update();
  }
});
