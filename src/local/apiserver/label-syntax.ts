/**
 * Label key and value syntax as Kubernetes validates it, with its messages (the API server answers a bad
 * selector with them verbatim): a key is `[prefix/]name` (prefix an RFC 1123 subdomain of at most 253
 * bytes, name at most 63 bytes of `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`); a value is empty or a name.
 */

const NAME_FORMAT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const NAME = new RegExp(`^${NAME_FORMAT}$`);
const VALUE_FORMAT = `(${NAME_FORMAT})?`;
const SUBDOMAIN_FORMAT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const SUBDOMAIN = new RegExp(`^${SUBDOMAIN_FORMAT}$`);

function regexError(message: string, format: string, examples: readonly string[]): string {
  return `${message} (e.g. ${examples.map((e) => `'${e}'`).join(",  or ")}, regex used for validation is '${format}')`;
}

const NAME_MESSAGE = regexError(
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  NAME_FORMAT,
  ["MyName", "my.name", "123-abc"],
);

const maxLength = (n: number) => `must be no more than ${n} bytes`;

/** What is wrong with a label key; empty when it is valid. */
export function labelKeyErrors(key: string): string[] {
  const parts = key.split("/");
  if (parts.length > 2)
    return [
      `a valid label key ${NAME_MESSAGE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  const errors: string[] = [];
  const name = parts.length === 2 ? (parts[1] ?? "") : key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    if (prefix === "") errors.push("prefix part must be non-empty");
    else {
      if (Buffer.byteLength(prefix) > 253) errors.push(`prefix part ${maxLength(253)}`);
      if (!SUBDOMAIN.test(prefix))
        errors.push(
          `prefix part ${regexError(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            SUBDOMAIN_FORMAT,
            ["example.com"],
          )}`,
        );
    }
  }
  if (name === "") errors.push("name part must be non-empty");
  else if (Buffer.byteLength(name) > 63) errors.push(`name part ${maxLength(63)}`);
  if (!NAME.test(name)) errors.push(`name part ${NAME_MESSAGE}`);
  return errors;
}

/** What is wrong with a label value; empty when it is valid. */
export function labelValueErrors(value: string): string[] {
  const errors: string[] = [];
  if (Buffer.byteLength(value) > 63) errors.push(maxLength(63));
  if (value !== "" && !NAME.test(value))
    errors.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        VALUE_FORMAT,
        ["MyValue", "my_value", "12345"],
      ),
    );
  return errors;
}

/** A field error in Kubernetes' text form: `path: Invalid value: "v": detail`. */
export function invalidValue(path: string, value: string, detail: string): string {
  return `${path}: Invalid value: ${JSON.stringify(value)}: ${detail}`;
}
