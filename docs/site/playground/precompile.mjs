// Bytecode for the page, compiled by Pyodide's own CPython at build time (node precompile.mjs NODE_MODULES WHEELS OUT):
// the wheels are unpacked into Pyodide as the page unpacks them, their packages compiled (unchecked-hash .pyc, valid
// whatever the files' times in the page), and every __pycache__ folder zipped into OUT. The page unpacks that zip
// after the wheels, so importing unetviz does not compile its source in the browser on every visit.
import fs from "node:fs";
import path from "node:path";

const [modules, wheels, out] = process.argv.slice(2);
const { loadPyodide } = await import(path.resolve(modules, "pyodide", "pyodide.mjs"));
const py = await loadPyodide({ indexURL: path.resolve(modules, "pyodide") + path.sep, packages: [] });
const site = py.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
for (const name of fs.readdirSync(wheels).filter((n) => n.endsWith(".whl")).sort()) {
  py.unpackArchive(new Uint8Array(fs.readFileSync(path.join(wheels, name))), "wheel", { extractDir: site });
}
py.runPython(`
import compileall, os, py_compile, sysconfig, zipfile
site = sysconfig.get_paths()["purelib"]
packages = [p for p in os.listdir(site) if os.path.isfile(os.path.join(site, p, "__init__.py"))]
for p in packages:
    assert compileall.compile_dir(os.path.join(site, p), quiet=1,
                                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
with zipfile.ZipFile("/tmp/pycache.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for p in packages:
        for root, _, files in os.walk(os.path.join(site, p)):
            if os.path.basename(root) == "__pycache__":
                for f in files:
                    full = os.path.join(root, f)
                    z.write(full, os.path.relpath(full, site))
`);
fs.writeFileSync(out, py.FS.readFile("/tmp/pycache.zip"));
