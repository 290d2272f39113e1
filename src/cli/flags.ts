/** Flag value parsers the commands share (each names the flag and the value it rejects). */
import { ErrorCode, MeshError } from "../errors.ts";

/** A commander argParser for a non-negative integer flag, e.g. `--port`. */
export function integer(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) {
      throw new MeshError(ErrorCode.InvalidArgument, `${flag}: "${value}" is not a non-negative integer`);
    }
    return Number(value);
  };
}
