# Turns pip's output into one progress line per package, readable on a terminal and in a log:
# "[3] numpy", then the install step with its package count, then the count installed. Errors and
# anything else pip says about a failure pass through unchanged.
/^(Collecting|Processing) / {
    name = $2; sub(/.*\//, "", name); sub(/-[0-9].*$/, "", name)
    n++; printf "  [%d] %s\n", n, name; fflush(); next }
/^Installing collected packages: / {
    sub(/^Installing collected packages: /, "")
    count = split($0, names, ", ")
    printf "  unpacking %d packages%s\n", count, (count > 20 ? " (the longest step: about a minute on two cores)" : "")
    fflush(); next
}
/^Successfully installed / {
    installed = NF - 2; printf "  installed %d packages\n", installed; fflush(); next
}
/^Requirement already satisfied/ { satisfied++; next }
/is ignored: it is neither a file nor a directory/ { next }
/^(Looking in |  Downloading|  Using cached|  Obtaining|  Preparing|  Installing build|  Getting requirements|  Building|  Created wheel|  Stored in|Building wheels|  Attempting uninstall|    Found existing|    Uninstalling|      Successfully uninstalled|Downloading |Using cached )/ { next }
{ print; fflush() }
END { if (!installed && !n && satisfied) printf "  nothing to install: %d requirements already satisfied\n", satisfied }
