// app.js is browser code, imported as text by assets.ts (TypeScript does not read it).
declare const text: string;
export default text;
