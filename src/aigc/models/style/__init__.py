"""Neural style transfer, one method per file, all with the VGG loss network of `aigc.backbones.vgg`:

    gatys.py     optimise the image itself (Gatys et al. 2015): any style, no training, slow
    fast.py      a feed-forward network per style (Johnson et al. 2016): trained through the one loop
    adain.py     arbitrary style in one pass (Huang & Belongie 2017): a decoder trained through the loop
    cyclegan.py  unpaired image-to-image translation (Zhu et al. 2017): two generators, two critics

`perceptual.py` holds what they share: images in and out, Gram matrices, the content and style losses,
colour preservation. Importing this package registers the trained families (fast, adain).
"""

from aigc.models.style import adain, cyclegan, fast  # noqa: F401  (registers the trainable families)


