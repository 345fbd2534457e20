/*
 * wsgi_driver: re-creates Python interpreters around a WSGI app in one process, without Apache.
 *
 * mod_wsgi >= 2.0 never destroys a sub-interpreter and makes a new one inside a live process, but
 * mod_wsgi 1.x did (WSGIReloadMechanism Interpreter), and the Apache parent finalizes and
 * re-initializes Python on a restart. Extension modules that keep pointers into the first
 * interpreter in C statics (Pyrex, single-phase init) break exactly there. This program repeats
 * those two transitions so the harness can watch them from outside: a crash here kills only this
 * process.
 *
 *   interpreter-cycle: Py_NewInterpreter, load and probe, Py_EndInterpreter; again, N times.
 *   interpreter-overlap: the next interpreter loads while the previous lives; then the previous ends
 *                      and the new one is probed again (a reload with a request in flight).
 *   finalize-reinit:   Py_Initialize, load and probe, Py_Finalize; again, N times.
 *
 * The loading and probing are done by a small Python file (the "host") run in each interpreter;
 * this file only makes and unmakes interpreters and says, before each step, which step it is on
 * (one JSON line appended to the progress file, one line on stderr), so that a death can be placed
 * in its cycle and step.
 *
 * usage: wsgi_driver MODE CYCLES PROGRAM HOST PROGRESS
 *   MODE      interpreter-cycle | interpreter-overlap | finalize-reinit
 *   CYCLES    reloads after the first load
 *   PROGRAM   the Python executable whose prefix and site the interpreters take (Py_SetProgramName)
 *   HOST      the Python file run in each interpreter
 *   PROGRESS  file the step lines are appended to (the host appends its results there too)
 * exit: 0 done; 2 usage; 3 the host itself failed; 4 an interpreter could not be made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int progress_fd = -1;

/* One step line to the progress file and to stderr, written with write(2) so that nothing is left
 * in a buffer when the next step kills the process. */
static void mark(int cycle, const char *phase, const char *step)
{
    char line[256];
    int length = snprintf(line, sizeof line, "{\"cycle\": %d, \"phase\": \"%s\", \"step\": \"%s\"}\n", cycle,
                          phase, step);
    if (length <= 0 || length >= (int)sizeof line)
        return;
    if (write(progress_fd, line, (size_t)length) < 0) {
        /* nothing to do: the harness reads what there is */
    }
    length = snprintf(line, sizeof line, "[wh-driver] cycle %d %s: %s\n", cycle, phase, step);
    if (length > 0 && length < (int)sizeof line && write(STDERR_FILENO, line, (size_t)length) < 0) {
    }
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    char *text;
    long size;
    if (file == NULL)
        return NULL;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return NULL;
    }
    text = malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, file) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text != NULL)
        text[size] = '\0';
    fclose(file);
    return text;
}

static PyObject *text_object(const char *value)
{
#if PY_MAJOR_VERSION >= 3
    return PyUnicode_FromString(value);
#else
    return PyString_FromString(value);
#endif
}

static int set_global(PyObject *globals, const char *name, PyObject *value)
{
    int failed;
    if (value == NULL)
        return -1;
    failed = PyDict_SetItemString(globals, name, value);
    Py_DECREF(value);
    return failed;
}

/* Run the host in the current interpreter's __main__, telling it the cycle, phase and task: "load"
 * (load the app and probe it) or "probe-again" (probe the app this interpreter loaded before). */
static int run_host(const char *source, const char *host_path, int cycle, const char *phase, const char *task)
{
    PyObject *main_module = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *globals, *code, *result;
    if (main_module == NULL) {
        PyErr_Print();
        return -1;
    }
    globals = PyModule_GetDict(main_module);
    if (PyDict_GetItemString(globals, "__builtins__") == NULL &&
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) != 0) {
        PyErr_Print();
        return -1;
    }
    if (set_global(globals, "WH_CYCLE", PyLong_FromLong(cycle)) != 0 ||
        set_global(globals, "WH_PHASE", text_object(phase)) != 0 ||
        set_global(globals, "WH_TASK", text_object(task)) != 0) {
        PyErr_Print();
        return -1;
    }
    code = Py_CompileString(source, host_path, Py_file_input);
    if (code == NULL) {
        PyErr_Print();
        return -1;
    }
#if PY_MAJOR_VERSION >= 3
    result = PyEval_EvalCode(code, globals, globals);
#else
    result = PyEval_EvalCode((PyCodeObject *)code, globals, globals);
#endif
    Py_DECREF(code);
    if (result == NULL) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static void set_program(const char *program)
{
#if PY_MAJOR_VERSION >= 3
    /* Deliberately never freed: Python keeps the pointer for the life of the process. */
    wchar_t *wide = Py_DecodeLocale(program, NULL);
    if (wide != NULL)
        Py_SetProgramName(wide);
#else
    Py_SetProgramName((char *)program);
#endif
}

static void start_python(void)
{
    Py_InitializeEx(0); /* no signal handlers: SIGINT/SIGTERM from the harness must end the process */
#if PY_VERSION_HEX < 0x03070000
    PyEval_InitThreads(); /* as mod_wsgi does; implicit from 3.7 */
#endif
}

/* interpreter-cycle: each reload ends the previous interpreter, then makes the next, as mod_wsgi 1.x
 * did with no request in flight; a death while ending interpreter N belongs to reload N + 1 (or to
 * the stop after the last).
 * interpreter-overlap: the next interpreter is made and loads the app while the previous one lives;
 * then the previous one ends and the new one serves again, as mod_wsgi 1.x did with a request still
 * in flight at the reload. Extension modules imported by both are shared across that ending. */
static int sub_interpreters(int cycles, int overlap, const char *source, const char *host_path)
{
    PyThreadState *main_state, *state = NULL, *next;
    int cycle;
    mark(0, "load", "initialize");
    start_python();
    main_state = PyThreadState_Get();
    for (cycle = 0; cycle <= cycles; cycle++) {
        const char *phase = cycle == 0 ? "load" : "reload";
        if (state != NULL && !overlap) {
            mark(cycle, phase, "end-interpreter");
            Py_EndInterpreter(state);
            PyThreadState_Swap(main_state);
            state = NULL;
        }
        mark(cycle, phase, "new-interpreter");
        next = Py_NewInterpreter();
        if (next == NULL) {
            fprintf(stderr, "[wh-driver] Py_NewInterpreter failed in cycle %d\n", cycle);
            return 4;
        }
        mark(cycle, phase, "host");
        if (run_host(source, host_path, cycle, phase, "load") != 0)
            return 3;
        if (state != NULL) { /* overlap: the previous one ends under the new one's feet */
            mark(cycle, phase, "end-interpreter");
            PyThreadState_Swap(state);
            Py_EndInterpreter(state);
            PyThreadState_Swap(next);
            mark(cycle, phase, "host");
            if (run_host(source, host_path, cycle, phase, "probe-again") != 0)
                return 3;
        }
        state = next;
    }
    mark(cycles + 1, "stop", "end-interpreter");
    Py_EndInterpreter(state);
    PyThreadState_Swap(main_state);
    mark(cycles + 1, "stop", "finalize");
    Py_Finalize();
    mark(cycles + 1, "stop", "finished");
    return 0;
}

static int finalize_reinit(int cycles, const char *source, const char *host_path)
{
    int cycle;
    for (cycle = 0; cycle <= cycles; cycle++) {
        const char *phase = cycle == 0 ? "load" : "reload";
        if (cycle > 0) {
            mark(cycle, phase, "finalize");
            Py_Finalize();
        }
        mark(cycle, phase, "initialize");
        start_python();
        mark(cycle, phase, "host");
        if (run_host(source, host_path, cycle, phase, "load") != 0)
            return 3;
    }
    mark(cycles + 1, "stop", "finalize");
    Py_Finalize();
    mark(cycles + 1, "stop", "finished");
    return 0;
}

int main(int argc, char **argv)
{
    char *source, *end;
    long cycles;
    int status;
    if (argc != 6) {
        fprintf(stderr, "usage: %s interpreter-cycle|interpreter-overlap|finalize-reinit CYCLES PROGRAM HOST PROGRESS\n", argv[0]);
        return 2;
    }
    errno = 0;
    cycles = strtol(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || cycles < 0 || cycles > 100000) {
        fprintf(stderr, "wsgi_driver: CYCLES must be a whole number from 0 to 100000, not '%s'\n", argv[2]);
        return 2;
    }
    source = read_file(argv[4]);
    if (source == NULL) {
        fprintf(stderr, "wsgi_driver: cannot read the host file %s: %s\n", argv[4], strerror(errno));
        return 2;
    }
    progress_fd = open(argv[5], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (progress_fd < 0) {
        fprintf(stderr, "wsgi_driver: cannot open the progress file %s: %s\n", argv[5], strerror(errno));
        return 2;
    }
    set_program(argv[3]);
    if (strcmp(argv[1], "interpreter-cycle") == 0)
        status = sub_interpreters((int)cycles, 0, source, argv[4]);
    else if (strcmp(argv[1], "interpreter-overlap") == 0)
        status = sub_interpreters((int)cycles, 1, source, argv[4]);
    else if (strcmp(argv[1], "finalize-reinit") == 0)
        status = finalize_reinit((int)cycles, source, argv[4]);
    else {
        fprintf(stderr, "wsgi_driver: unknown mode '%s' (interpreter-cycle, interpreter-overlap, finalize-reinit)\n", argv[1]);
        status = 2;
    }
    free(source);
    return status;
}
