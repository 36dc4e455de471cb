# lit configuration of the sattn suite (Triton's lit.cfg.py pattern):
# FileCheck always runs with --enable-var-scope so captured names do not
# leak between CHECK-LABEL sections.
import os
import lit.formats

config.name = "sattn"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.sattn_obj_root, "tests", "lit")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]

path = os.pathsep.join([config.sattn_tools_dir, config.llvm_tools_dir, config.cuda_bin_dir,
                        config.environment.get("PATH", os.environ.get("PATH", ""))])
config.environment["PATH"] = path
config.substitutions.append(("FileCheck", "FileCheck --enable-var-scope"))
config.substitutions.append(("%examples", os.path.join(config.sattn_src_root, "examples")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%make_npy", "python3 " + os.path.join(config.sattn_src_root, "scripts", "make_npy.py")))
config.substitutions.append(("%python", "python3"))
config.substitutions.append(("%sattn_src", config.sattn_src_root))

# Tests that must not see a GPU (missing-driver errors) declare
# `UNSUPPORTED: gpu`.
import shutil, subprocess
if shutil.which("nvidia-smi") and subprocess.call(["nvidia-smi", "-L"], stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL) == 0:
    config.available_features.add("gpu")
