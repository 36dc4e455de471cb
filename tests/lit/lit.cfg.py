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

path = os.pathsep.join([config.sattn_tools_dir, config.llvm_tools_dir,
                        config.environment.get("PATH", os.environ.get("PATH", ""))])
config.environment["PATH"] = path
config.substitutions.append(("FileCheck", "FileCheck --enable-var-scope"))
config.substitutions.append(("%examples", os.path.join(config.sattn_src_root, "examples")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%make_npy", "python3 " + os.path.join(config.sattn_src_root, "scripts", "make_npy.py")))
config.substitutions.append(("%python", "python3"))
