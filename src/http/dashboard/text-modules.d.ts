// The dashboard's files are imported as text (see assets.ts); TypeScript does not know that an
// import attribute changes what a module is.
declare module "*.css" {
  const text: string;
  export default text;
}

declare module "uplot/dist/uPlot.esm.js" {
  const text: string;
  export default text;
}
