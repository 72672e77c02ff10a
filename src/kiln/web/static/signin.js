// The sign-in form. It asks for a TOTP code only when the server says the account needs one
// (reason "totp_required"), and shows the server's own message for every refusal, including
// the rate limit (429 "too many failed logins; try again in N s").

export class SignInForm {
  #el;
  #session;
  #onSignedIn;
  #busy = false;

  /**
   * `el`: {view, form, username, password, otpField, otp, message, submit} elements of
   * index.html. `onSignedIn(user)` is called after a successful sign-in.
   */
  constructor(el, { session, onSignedIn }) {
    this.#el = el;
    this.#session = session;
    this.#onSignedIn = onSignedIn;
    el.form.addEventListener("submit", (event) => {
      // The page never navigates: the answer sets cookies and the script shows the plant.
      event.preventDefault();
      this.#submit();
    });
  }

  /** Show the form, with `message` (e.g. why the session ended) when there is one. */
  show(message = "", kind = "info") {
    const el = this.#el;
    el.password.value = "";
    this.#askForCode(false);
    this.#setMessage(message, kind);
    el.view.hidden = false;
    (el.username.value ? el.password : el.username).focus();
  }

  hide() {
    this.#el.view.hidden = true;
    this.#el.password.value = "";
    this.#el.otp.value = "";
  }

  async #submit() {
    const el = this.#el;
    if (this.#busy) return;
    this.#busy = true;
    el.submit.disabled = true;
    this.#setMessage("Signing in…");
    let user;
    try {
      const otp = el.otpField.hidden ? "" : el.otp.value.trim();
      user = await this.#session.login(el.username.value.trim(), el.password.value, otp);
    } catch (err) {
      this.#refused(err);
      return;
    } finally {
      this.#busy = false;
      el.submit.disabled = false;
    }
    this.hide();
    this.#setMessage("");
    this.#onSignedIn(user);
  }

  #refused(err) {
    const el = this.#el;
    this.#setMessage(err?.message ?? String(err), "error");
    if (err?.reason === "totp_required" || err?.reason === "invalid_totp") {
      // The password was right; keep it so only the code has to be typed (again).
      this.#askForCode(true);
      el.otp.focus();
    } else if (err?.reason === "invalid_credentials") {
      el.password.value = "";
      el.password.focus();
    }
  }

  #askForCode(on) {
    const el = this.#el;
    el.otpField.hidden = !on;
    el.otp.required = on;
    el.otp.value = "";
  }

  #setMessage(message, kind = "info") {
    const box = this.#el.message;
    box.textContent = message;
    box.dataset.kind = kind;
    box.hidden = message === "";
  }
}
