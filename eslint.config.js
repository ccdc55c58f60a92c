import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "coverage/**", "dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // Invariant §3.8: no code path in src/ may rebuild the CA secret or sign with it as one key.
    files: ["src/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { property: "combineSecret", message: "DESIGN §3.1: the CA secret is never recombined." },
        { property: "trustedDealer", message: "DESIGN §3.8: the CA key is born by DKG only." },
      ],
    },
  },
);
