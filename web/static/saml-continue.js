// The SAML answer arrived by a cross-site POST, which carries no SameSite=Lax session cookie;
// posting it again from this page (same site) brings the reader's session along.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("saml-continue");
  if (form) { form.submit(); }
});
