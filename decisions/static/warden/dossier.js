// The dossier: a picked canned response adds its text to the reason, which the reviewer then
// edits; unpicking it takes the untouched text out again. Nothing else runs on the page.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!box.matches("input[data-response-text]")) return;
  const reason = box.form.querySelector("textarea[name=reason]");
  if (!reason) return;
  const text = box.dataset.responseText.trim();
  if (box.checked) {
    reason.value = reason.value.trim() ? `${reason.value.trim()}\n\n${text}` : text;
  } else {
    reason.value = reason.value.replace(text, "").replace(/\n{3,}/g, "\n\n").trim();
  }
});
