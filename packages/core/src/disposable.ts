/** Something that holds a resource or a subscription until disposed (vscode's `IDisposable`). */
export interface Disposable {
  dispose(): void;
}
