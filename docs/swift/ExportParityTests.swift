// A Swift port checked against `python -m parity export MODEL --out DIR`, tap by tap.
//
// NOT COMPILED HERE: this project's machines have no Swift toolchain, so this file is written
// against mlx-swift's public API (MLX `loadArrays(url:)`, `allClose`, `MLXArray` subscripts) and
// swift-testing (`@Test`, `#expect`, `#require`) and has never been built. It reads the same
// format as tools/check_export.py, the Python reader our tests run (tests/test_export.py); when
// the two disagree, the Python reader is the definition. Adapt `runPort` to your model: it must
// return every tap named in the manifest, whole, in the manifest's stated layout.
//
// Package.swift: .testTarget(name: "ParityTests", dependencies: [.product(name: "MLX",
// package: "mlx-swift")]); set PARITY_EXPORT=/path/to/DIR when running `swift test`.

import Foundation
import MLX
import Testing

// The parts of manifest.json this test reads (schema_version 1).
struct Manifest: Decodable {
    struct Model: Decodable { let id: String }
    struct Tolerance: Decodable { let atol: Double; let rtol: Double; let nmse_max: Double? }
    struct Tap: Decodable {
        let index: Int
        let name: String
        let key: String
        let kind: String  // "continuous" or "discrete"
        let shape: [Int]
        let slice: [[Int]]?  // [start, stop, step] per axis, or null when stored whole
        let channels: Channels?  // with a slice: the largest channels stored at every frame
        let tolerance: [String: Tolerance]?  // per compute dtype; absent for discrete taps
    }
    struct Channels: Decodable { let key: String; let indices: [Int] }
    struct Input: Decodable { let key: String; let shape: [Int] }
    struct Case: Decodable {
        let name: String
        let files: [String: String]  // dtype -> file name
        let inputs: [String: Input]
        let taps: [Tap]
    }
    let schema_version: Int
    let model: Model
    let cases: [Case]
}

/// Your port: run the model on the case's inputs (names without the "inputs/" prefix) and return
/// every tap by name. Replace the body with your model's forward pass with taps recorded.
func runPort(modelID: String, inputs: [String: MLXArray], dtype: DType) throws -> [String: MLXArray] {
    throw PortNotWired()
}
struct PortNotWired: Error {}

/// Apply the manifest's [start, stop, step] per axis to a whole tap.
func applySlice(_ a: MLXArray, _ slice: [[Int]]?) -> MLXArray {
    guard let slice else { return a }
    var out = a
    for (axis, s) in slice.enumerated() where s[2] != 1 || s[0] != 0 || s[1] != a.dim(axis) {
        let idx = MLXArray(Array(stride(from: s[0], to: s[1], by: s[2])).map { Int32($0) })
        out = out.take(idx, axis: axis)
    }
    return out
}

@Test("every tap of every exported case, in order; the first failing tap is the divergence")
func exportedTapsMatch() throws {
    let dir = try #require(ProcessInfo.processInfo.environment["PARITY_EXPORT"],
                           "set PARITY_EXPORT to a `python -m parity export` directory")
    let root = URL(fileURLWithPath: dir)
    let manifest = try JSONDecoder().decode(
        Manifest.self, from: Data(contentsOf: root.appendingPathComponent("manifest.json")))
    #expect(manifest.schema_version == 1)
    let dtype = "float32"  // or "float16" / "bfloat16": the port's compute dtype picks the table

    for c in manifest.cases {
        // expected values: always the float32 file (the half files hold the same taps rounded)
        let arrays = try loadArrays(url: root.appendingPathComponent(c.files["float32"]!))
        var inputs: [String: MLXArray] = [:]
        for (name, input) in c.inputs {
            inputs[name] = try #require(arrays[input.key], "missing \(input.key)")
        }
        let got = try runPort(modelID: manifest.model.id, inputs: inputs, dtype: .float32)
        #expect(!c.taps.isEmpty, "zero taps compared checks nothing")

        for tap in c.taps.sorted(by: { $0.index < $1.index }) {
            let want = try #require(arrays[tap.key], "missing \(tap.key) in \(c.files["float32"]!)")
            let whole = try #require(got[tap.name], "the port recorded no tap \(tap.name)")
            #expect(whole.shape == tap.shape, "\(tap.name): shape \(whole.shape) != \(tap.shape)")
            if tap.kind == "discrete" {
                // tokens and codes: exact
                let equal = (whole.asType(.int32) .== want.asType(.int32)).all().item(Bool.self)
                try #require(equal, "first diverging tap \(tap.index) \(tap.name): tokens differ")
                continue
            }
            let tol = try #require(tap.tolerance?[dtype])
            let g = applySlice(whole, tap.slice).asType(.float32)
            let ok = allClose(g, want, rtol: tol.rtol, atol: tol.atol).item(Bool.self)
            let maxAbs = abs(g - want).max().item(Float.self)
            // stop at the first failing tap: later ones only repeat its error
            try #require(ok, "first diverging tap \(tap.index) \(tap.name): max |diff| \(maxAbs) > atol \(tol.atol) + rtol \(tol.rtol) |want|")
            if let channels = tap.channels {
                // every frame of the channels of largest magnitude, same element bound
                let wantC = try #require(arrays[channels.key], "missing \(channels.key)")
                let idx = MLXArray(channels.indices.map { Int32($0) })
                let gotC = whole.take(idx, axis: whole.ndim - 1).asType(.float32)
                let okC = allClose(gotC, wantC, rtol: tol.rtol, atol: tol.atol).item(Bool.self)
                try #require(okC, "first diverging tap \(tap.index) \(tap.name): outlier channels \(channels.indices)")
            }
            if let nmseMax = tol.nmse_max {
                let nmse = (square(g - want).mean() / square(want).mean()).item(Float.self)
                #expect(Double(nmse) <= nmseMax, "\(tap.name): normalised MSE \(nmse) > \(nmseMax)")
            }
        }
    }
}
