"""Label files written from the array's buffer read back exactly as the usual writers' files."""

import gzip
import zlib

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from LinGuinELib.geometry import ImageGeometry
from LinGuinELib.outputs.gzipped import write_nifti_gz
from LinGuinELib.outputs.nrrd_text import write_segmentation_file

GRIDS = [  # size (x, y, z), spacing, origin, direction
    ((7, 5, 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
    ((64, 48, 9), (0.703125, 0.703125, 2.5), (-166.0, -171.69999694824219, -340.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
    ((20, 30, 11), (0.8, 0.6, 1.25), (12.5, -3.0, 40.1), (0, 1, 0, -1, 0, 0, 0, 0, -1)),
    ((16, 16, 16), (1.1, 0.9, 2.0), (-5.0, 7.0, 1.0), sitk.Euler3DTransform((0, 0, 0), 0.1, -0.2, 0.3).GetMatrix()),
]


@pytest.mark.parametrize("grid", GRIDS)
def test_nifti_gz_is_what_itk_writes(tmp_path, grid):
    size, spacing, origin, direction = grid
    rng = np.random.default_rng(0)
    labels = np.zeros(size[::-1], np.uint16)
    labels[rng.random(labels.shape) < 0.1] = 3
    labels[0, 0, 0], labels[-1, -1, -1] = 1, 65535  # both ends of the buffer, the full range
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing), image.SetOrigin(origin), image.SetDirection(direction)
    sitk.WriteImage(image, str(tmp_path / "itk.nii"))
    write_nifti_gz(labels, ImageGeometry.of(image), tmp_path / "ours.nii.gz", 1)
    assert gzip.open(tmp_path / "ours.nii.gz").read() == (tmp_path / "itk.nii").read_bytes()
    back, itk = sitk.ReadImage(str(tmp_path / "ours.nii.gz")), sitk.ReadImage(str(tmp_path / "itk.nii"))
    assert (back.GetSize(), back.GetSpacing(), back.GetOrigin(), back.GetDirection()) == (
        itk.GetSize(), itk.GetSpacing(), itk.GetOrigin(), itk.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)


def test_nifti_gz_refuses_a_wrong_shape(tmp_path):
    geometry = ImageGeometry((4, 5, 6), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="does not match"):
        write_nifti_gz(np.zeros((6, 5, 3), np.uint16), geometry, tmp_path / "x.nii.gz", 1)


@pytest.mark.parametrize("layers", [1, 2])
def test_seg_nrrd_is_what_slicerio_writes(tmp_path, layers):
    """Same header fields and voxels as slicerio's own writer, one layer or overlapping layers."""
    ijk = np.array([[0.7, 0, 0, -166.0], [0, 0.7, 0, -171.7], [0, 0, 2.5, -340.0], [0, 0, 0, 1]])
    seg = slicerio.create_segmentation((9, 8, 5), ijk)
    a = np.zeros((9, 8, 5), np.uint8)
    a[1:4, 2:6, 1:3] = 1
    slicerio.add_segment(seg, a, {"id": "L1", "name": "L1", "color": [0.902, 0.624, 0.0], "tags": {"k": "v"}})
    if layers == 2:
        slicerio.add_segment(seg, a, {"id": "Läsion", "name": "Läsion", "color": [0, 1, 0], "tags": {"k": "Ωmega"}})
    else:
        seg["segments"][0]["name"] = "Läsion"
    assert seg["voxels"].ndim == (4 if layers == 2 else 3)
    write_segmentation_file(seg, tmp_path / "ours.seg.nrrd")
    ascii_seg = dict(seg, segments=[dict(s, id="L", name="L", tags={"k": "v"}) for s in seg["segments"]])
    slicerio.write_segmentation(str(tmp_path / "theirs.seg.nrrd"), ascii_seg, compression_level=1)
    ours, theirs = ((tmp_path / f"{n}.seg.nrrd").read_bytes() for n in ("ours", "theirs"))
    head_o, head_t = (d[:d.index(b"\n\n") + 2] for d in (ours, theirs))
    assert zlib.decompress(ours[len(head_o):], 31) == zlib.decompress(theirs[len(head_t):], 31)
    lines_o = [x for x in head_o.split(b"\n") if not x.startswith(b"#") and b"Name" not in x and b"ID" not in x
               and b"Tags" not in x]
    lines_t = [x for x in head_t.split(b"\n") if not x.startswith(b"#") and b"Name" not in x and b"ID" not in x
               and b"Tags" not in x]
    assert lines_o == lines_t
    back = slicerio.read_segmentation(str(tmp_path / "ours.seg.nrrd"))
    np.testing.assert_array_equal(back["voxels"], seg["voxels"])
    image = sitk.ReadImage(str(tmp_path / "ours.seg.nrrd"))  # Slicer reads the header as UTF-8, as ITK does
    assert image.GetMetaData(f"Segment{layers - 1}_Name") == "Läsion"
